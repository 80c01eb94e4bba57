package steps

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sgerun/sgerun/shell"
	"github.com/sgerun/sgerun/target"
	"go.yaml.in/yaml/v3"
)

// sgeCommonSharedSpec finds out whether the cell's common/ directory is one
// shared directory (NFS) or one per host (Debian's default), by comparing
// act_qmaster's inode, mtime and size on the reference host with every
// other host's. Hosts that do not answer never block it: the hosts that
// answer decide. The inventory's cluster.common_shared (yes/no) overrides
// the guess. Run it before act_qmaster is written anywhere.
type sgeCommonSharedSpec struct {
	SGERoot   string `yaml:"sge_root"`
	SGECell   string `yaml:"sge_cell"`
	Reference string `yaml:"reference"`
	// Hosts are the other hosts, comma- or space-separated.
	Hosts string `yaml:"hosts"`
	// Required are hosts of Hosts that must answer (comma- or
	// space-separated): the step fails when one cannot be read. The
	// reference must always answer: without its file there is nothing to
	// compare with.
	Required string `yaml:"required"`
	// Override is cluster.common_shared: "yes", "no", or "" to detect.
	Override string        `yaml:"override"`
	Timeout  time.Duration `yaml:"timeout"`
}

func (s *sgeCommonSharedSpec) Mutates() bool { return false }

func (s *sgeCommonSharedSpec) Do(ctx context.Context, _ target.Target, env Runtime) (Result, error) {
	res := Result{Data: map[string]any{"shared": true, "differ": []string{}, "unreachable": []string{}}}
	switch s.Override {
	case "yes", "no":
		res.Data["shared"] = s.Override == "yes"
		res.Stdout = "cluster.common_shared: " + s.Override + "\n"
		return res, nil
	}
	if env.Connect == nil {
		return res, fmt.Errorf("sge_common_shared needs an SSH transport")
	}
	hosts := append([]string{s.Reference}, splitList(s.Hosts)...)
	hosts = slices.Compact(hosts)
	cmd := "stat -c '%i %Y %s' " + shell.Quote(cellCommon(s.SGERoot, s.SGECell)+"/act_qmaster")
	cctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	stats := make([]string, len(hosts))
	errs := make([]error, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t, err := env.Connect(cctx, h, "")
			if err == nil {
				var out target.Output
				out, err = t.Query(cctx, cmd, nil)
				if err == nil && out.ExitCode != 0 {
					err = fmt.Errorf("stat: exit status %d%s", out.ExitCode, lastLine(out.Stderr))
				}
				stats[i] = strings.TrimSpace(out.Stdout)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return res, err
	}
	must := append([]string{s.Reference}, splitList(s.Required)...)
	for i, h := range hosts {
		if errs[i] != nil && slices.Contains(must, h) {
			return res, fmt.Errorf("read act_qmaster on %s, which must answer to tell whether common/ is shared: %w", h, errs[i])
		}
	}
	ref := stats[0]
	var differ, unreachable, lines []string
	for i, h := range hosts {
		switch {
		case errs[i] != nil:
			unreachable = append(unreachable, h)
			lines = append(lines, h+": "+errs[i].Error())
		case stats[i] != ref:
			differ = append(differ, h)
			lines = append(lines, h+": "+stats[i]+" (not "+s.Reference+"'s file)")
		default:
			lines = append(lines, h+": "+stats[i])
		}
	}
	res.Data["shared"] = len(differ) == 0
	res.Data["differ"], res.Data["unreachable"] = append([]string{}, differ...), append([]string{}, unreachable...)
	res.Stdout = strings.Join(lines, "\n") + "\n"
	return res, nil
}

func sgeCommonSharedKind() Kind {
	return Kind{
		Name:     "sge_common_shared",
		Doc:      "find out whether common/ is shared: act_qmaster's inode, mtime and size on reference against hosts (hosts that do not answer never decide; the reference and the required ones must answer); override yes/no (cluster.common_shared) settles it",
		Local:    true,
		DataKeys: []string{"shared", "differ", "unreachable"},
		New: func(n *yaml.Node) (Spec, error) {
			s := &sgeCommonSharedSpec{Timeout: 30 * time.Second}
			if err := decodeStrict(n, s); err != nil {
				return nil, err
			}
			if err := checkCell(n, s.SGERoot, s.SGECell); err != nil {
				return nil, err
			}
			if err := require(n, "reference", s.Reference); err != nil {
				return nil, err
			}
			switch s.Override {
			case "", "yes", "no", "auto":
			default:
				return nil, posErr(n, "override %q: want yes, no or empty", s.Override)
			}
			if s.Timeout <= 0 {
				return nil, posErr(n, "timeout must be positive")
			}
			return s, nil
		},
	}
}
