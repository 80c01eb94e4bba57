package runbook_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sgerun/sgerun/diag"
	"github.com/sgerun/sgerun/inventory"
	"github.com/sgerun/sgerun/plan"
	"github.com/sgerun/sgerun/runbook"
)

// fixture is one file of testdata/bad with its expectation header:
//
//	# want: LINE:COL: substring
//	# vars: name=value ...   (optional --var overrides)
//
// LINE:COL 0:0 means the problem has no position ("file: msg").
type fixture struct {
	Path      string
	Line, Col int
	Substr    string
	Vars      map[string]string
}

// Want is the "file:line:col: " prefix (or "file: ") the error line must
// start with.
func (f fixture) Want(file string) string {
	if f.Line == 0 {
		return file + ": "
	}
	return fmt.Sprintf("%s:%d:%d: ", file, f.Line, f.Col)
}

func loadFixtures(t *testing.T) []fixture {
	t.Helper()
	paths, err := filepath.Glob("testdata/bad/*.yaml")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	var out []fixture
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		f := fixture{Path: p, Vars: map[string]string{}}
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			line := sc.Text()
			if rest, ok := strings.CutPrefix(line, "# want: "); ok {
				parts := strings.SplitN(rest, ":", 3)
				if len(parts) != 3 {
					t.Fatalf("%s: bad want line %q", p, line)
				}
				f.Line, _ = strconv.Atoi(parts[0])
				f.Col, _ = strconv.Atoi(parts[1])
				f.Substr = strings.TrimPrefix(parts[2], " ")
				continue
			}
			if rest, ok := strings.CutPrefix(line, "# vars: "); ok {
				for _, kv := range strings.Fields(rest) {
					k, v, _ := strings.Cut(kv, "=")
					f.Vars[k] = v
				}
				continue
			}
			break
		}
		if f.Substr == "" && f.Line == 0 {
			t.Fatalf("%s: first line must be `# want: LINE:COL: substring`", p)
		}
		out = append(out, f)
	}
	return out
}

// checkDiag asserts that msg (one problem per line) has a line starting with
// the fixture's position and containing its substring.
func checkDiag(t *testing.T, f fixture, file, msg string) {
	t.Helper()
	prefix := f.Want(file)
	for _, line := range strings.Split(msg, "\n") {
		if strings.HasPrefix(line, prefix) && strings.Contains(line[len(prefix):], f.Substr) {
			return
		}
	}
	t.Errorf("%s: want a line %q…%q, got:\n%s", f.Path, prefix, f.Substr, msg)
}

func TestBadFixtures(t *testing.T) {
	inv, err := inventory.Load("testdata/inv.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range loadFixtures(t) {
		t.Run(filepath.Base(f.Path), func(t *testing.T) {
			rb, err := runbook.Load(f.Path)
			if err == nil {
				_, err = plan.Compile(rb, inv, f.Vars)
			}
			if err == nil {
				t.Fatalf("%s: no error", f.Path)
			}
			if !errors.Is(err, diag.ErrInvalid) {
				t.Errorf("error %v does not match diag.ErrInvalid", err)
			}
			var l *diag.List
			if !errors.As(err, &l) {
				t.Errorf("error is %T, want *diag.List", err)
			}
			checkDiag(t, f, f.Path, err.Error())
		})
	}
}

// TestGoodFixtures checks that the runbooks under testdata/good validate:
// the bad fixtures fail for their own reason, not for being unusual.
func TestGoodFixtures(t *testing.T) {
	inv, err := inventory.Load("testdata/inv.yaml")
	if err != nil {
		t.Fatal(err)
	}
	paths, _ := filepath.Glob("testdata/good/*.yaml")
	if len(paths) == 0 {
		t.Fatal("no good fixtures")
	}
	for _, p := range paths {
		rb, err := runbook.Load(p)
		if err == nil {
			_, err = plan.Compile(rb, inv, nil)
		}
		if err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}
