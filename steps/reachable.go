package steps

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/sgerun/sgerun/target"
	"go.yaml.in/yaml/v3"
)

// reachableSpec refuses the run unless the controller reaches every host
// over SSH: a takeover whose shadow cannot be reached must stop before it
// takes a lock there, and say so as a refusal (nothing changed), not as a
// failed step.
type reachableSpec struct {
	Hosts   []string      `yaml:"hosts"`
	Msg     string        `yaml:"msg"`
	Timeout time.Duration `yaml:"timeout"`
}

func (s *reachableSpec) Mutates() bool { return false }

func (s *reachableSpec) Do(ctx context.Context, _ target.Target, env Runtime) (Result, error) {
	res := Result{Data: map[string]any{"unreachable": []string{}}}
	if env.Reach == nil {
		return res, fmt.Errorf("reachable needs an SSH transport")
	}
	cctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	var bad []string
	for _, h := range s.Hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := env.Reach(cctx, h); err != nil {
				mu.Lock()
				bad = append(bad, h+": "+err.Error())
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if len(bad) > 0 {
		bad = sortedCopy(bad)
		res.Data["unreachable"] = bad
		return res, fmt.Errorf("%w: %s: %s", ErrRefused, s.Msg, strings.Join(bad, "; "))
	}
	return res, nil
}

func reachableKind() Kind {
	return Kind{
		Name:     "reachable",
		Doc:      "refuse (exit 3) unless the controller reaches every host of hosts over SSH",
		Local:    true,
		Recheck:  true,
		DataKeys: []string{"unreachable"},
		New: func(n *yaml.Node) (Spec, error) {
			s := &reachableSpec{Timeout: 30 * time.Second}
			if err := decodeStrict(n, s); err != nil {
				return nil, err
			}
			if len(s.Hosts) == 0 {
				return nil, posErr(n, "reachable needs hosts")
			}
			if s.Timeout <= 0 {
				return nil, posErr(n, "timeout must be positive")
			}
			return s, require(n, "msg", s.Msg)
		},
	}
}
