package steps

import (
	"context"
	"fmt"
	"strings"

	"github.com/sgerun/sgerun/target"
	"go.yaml.in/yaml/v3"
)

// stopSpec ends the run successfully when its condition holds, e.g. when
// the wanted state is already there.
type stopSpec struct {
	If  string `yaml:"if"`
	Msg string `yaml:"msg"`
}

func (s *stopSpec) Mutates() bool { return false }

func (s *stopSpec) Do(context.Context, target.Target, Runtime) (Result, error) {
	switch strings.TrimSpace(s.If) {
	case "true":
		return Result{Data: map[string]any{"stopped": true}}, fmt.Errorf("%w: %s", ErrStopRun, s.Msg)
	case "false":
		return Result{Data: map[string]any{"stopped": false}}, nil
	}
	return Result{}, fmt.Errorf("stop condition rendered %q, want true or false", s.If)
}

func stopKind() Kind {
	return Kind{
		Name:     "stop",
		Doc:      "end the run successfully (exit 0) with msg when the condition `if` holds, e.g. nothing to do",
		Local:    true,
		CondKeys: []string{"if"},
		DataKeys: []string{"stopped"},
		New: func(n *yaml.Node) (Spec, error) {
			s := &stopSpec{}
			if err := decodeStrict(n, s); err != nil {
				return nil, err
			}
			if err := require(n, "if", s.If); err != nil {
				return nil, err
			}
			return s, require(n, "msg", s.Msg)
		},
	}
}
