package runbook_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/sgerun/sgerun/diag"
	"github.com/sgerun/sgerun/inventory"
	"github.com/sgerun/sgerun/plan"
	"github.com/sgerun/sgerun/runbook"
)

// FuzzParse: Parse and plan.Compile never panic, and every error they return
// is a positioned input error.
func FuzzParse(f *testing.F) {
	for _, pattern := range []string{"testdata/bad/*.yaml", "testdata/good/*.yaml"} {
		paths, _ := filepath.Glob(pattern)
		for _, p := range paths {
			b, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b, "")
		}
	}
	// testdata/fuzz/FuzzParse holds the engine tests' runbooks as seeds.
	inv, err := inventory.Load("testdata/inv.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte, kv string) {
		rb, err := runbook.Parse("fuzz.yaml", data)
		if err != nil {
			if !errors.Is(err, diag.ErrInvalid) {
				t.Fatalf("Parse error %v is not diag.ErrInvalid", err)
			}
			return
		}
		var overrides map[string]string
		if k, v, ok := cutEq(kv); ok {
			overrides = map[string]string{k: v}
		}
		if _, err := plan.Compile(rb, inv, overrides); err != nil && !errors.Is(err, diag.ErrInvalid) {
			t.Fatalf("Compile error %v is not diag.ErrInvalid", err)
		}
	})
}

func cutEq(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '=' {
			return s[:i], s[i+1:], i > 0
		}
	}
	return "", "", false
}
