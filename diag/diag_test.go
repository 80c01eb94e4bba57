package diag

import (
	"errors"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestFromYAMLPositions: a syntax error is reported at the line and column
// of the problem, not at yaml.v3's line (which can be the start of the
// enclosing block) with column 1.
func TestFromYAMLPositions(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"value with colon", "name: x\nsteps:\n  - name: a\n    run: echo a: b\n", "f.yaml:4:10: mapping value is not allowed"},
		{"under-indented key", "name: x\nsteps:\n  - name: a\n   on: all\n", "f.yaml:4:4: value is not allowed"},
		{"unclosed flow sequence", "name: [x\n", "f.yaml:1:7: sequence end token ']' not found"},
		{"tab", "name: x\n\tsteps: 1\n", `f.yaml:2:1: found character '\t'`},
		{"unterminated quote", "a: 'unterminated\n", "f.yaml:1:4: could not find end character of single-quoted text"},
		{"reserved character", "key: @bad\n", "f.yaml:1:6: '@' is a reserved character"},
		// A plain scalar continued onto a deeper line: yaml.v3's line (the
		// continuation) is the useful one.
		{"continued scalar", "roles:\n  shadow: s1\n   bad: [\n", "f.yaml:3:1: mapping values are not allowed"},
		// Only yaml.v3 rejects it: its message, with no column.
		{"unknown anchor", "a: &x 1\nb: *y\n", "f.yaml: unknown anchor 'y' referenced"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n yaml.Node
			yerr := yaml.Unmarshal([]byte(tt.src), &n)
			if yerr == nil {
				t.Fatalf("yaml.v3 accepted %q", tt.src)
			}
			err := FromYAML("f.yaml", []byte(tt.src), yerr)
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not match ErrInvalid", err)
			}
			if got := err.Error(); !strings.HasPrefix(got, tt.want) {
				t.Errorf("got  %q\nwant %q…", got, tt.want)
			}
		})
	}
}
