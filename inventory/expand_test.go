package inventory

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/sgerun/sgerun/diag"
)

func TestExpandRange(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"gc001", []string{"gc001"}},
		{"gc[001-004]", []string{"gc001", "gc002", "gc003", "gc004"}},
		{"n[1-3,7,10-11]", []string{"n1", "n2", "n3", "n7", "n10", "n11"}},
		{"r[1-2]n[01-02]", []string{"r1n01", "r1n02", "r2n01", "r2n02"}},
		{"n[8-11]", []string{"n8", "n9", "n10", "n11"}},
		{"n[08-11]", []string{"n08", "n09", "n10", "n11"}},
		{"n[98-101]x", []string{"n98x", "n99x", "n100x", "n101x"}},
		{"[1-2]", []string{"1", "2"}},
		{"a[5]b", []string{"a5b"}},
		{"x[0]", []string{"x0"}},
		{"a;b", []string{"a;b"}}, // plain names are not checked here
	}
	for _, tt := range tests {
		got, err := ExpandRange(tt.in)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ExpandRange(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestExpandRangeErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "empty pattern"},
		{"gc[1-4", "'[' without ']'"},
		{"gc1-4]", "']' without '['"},
		{"gc[1-[2]]", "'[' without ']'"},
		{"gc[]", "empty brackets"},
		{"gc[4-1]", "reversed range 4-1"},
		{"gc[1,,2]", "missing number"},
		{"gc[1-]", "missing number"},
		{"gc[-1]", "missing number"},
		{"gc[a-b]", "not a number"},
		{"gc[1-2-3]", "not a number"},
		{"gc[ 1]", "not a number"},
		{"gc[0-100000]", "more than 100000"},
		{"a[0-999]b[0-999]", "more than 100000"},
		{"a[0-99]b[0-99]c[0-99]", "more than 100000"},
		{"gc[0-9999999999]", "more than 9 digits"},
		{"n[0-60000,0-60000]", "more than 100000"},
	}
	for _, tt := range tests {
		got, err := ExpandRange(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrPattern) {
			t.Errorf("ExpandRange(%q) = %d names, %v; want error containing %q", tt.in, len(got), err, tt.want)
		}
	}
}

func TestExpandRangeLimit(t *testing.T) {
	got, err := ExpandRange("n[1-100000]")
	if err != nil || len(got) != MaxExpand || got[0] != "n1" || got[MaxExpand-1] != "n100000" {
		t.Errorf("ExpandRange at the limit: %d names, %v", len(got), err)
	}
}

func TestParseTolerance(t *testing.T) {
	tests := []struct {
		in   string
		want Tolerance
		str  string
	}{
		{"3", Tolerance{Count: 3}, "3"},
		{"0", Tolerance{}, "0"},
		{" 7 ", Tolerance{Count: 7}, "7"},
		{"10%", Tolerance{Percent: 10}, "10%"},
		{"12.5%", Tolerance{Percent: 12.5}, "12.5%"},
		{"100%", Tolerance{Percent: 100}, "100%"},
		{"0%", Tolerance{}, "0"},
	}
	for _, tt := range tests {
		got, err := ParseTolerance(tt.in)
		if err != nil || got != tt.want || got.String() != tt.str {
			t.Errorf("ParseTolerance(%q) = %+v (%q), %v; want %+v (%q)", tt.in, got, got.String(), err, tt.want, tt.str)
		}
	}
	for _, in := range []string{"", "ten", "-1", "+3", "1.5", "10 %", "%", "101%", "1e2%", "NaN%", "Inf%", ".5%", "5.%", "99999999999"} {
		if _, err := ParseTolerance(in); !errors.Is(err, ErrTolerance) {
			t.Errorf("ParseTolerance(%q) = %v, want ErrTolerance", in, err)
		}
	}
}

func TestToleranceAllowed(t *testing.T) {
	tests := []struct {
		t     Tolerance
		total int
		want  int
	}{
		{Tolerance{Count: 3}, 10, 3},
		{Tolerance{Count: 3}, 2, 2},
		{Tolerance{Count: 3}, 0, 0},
		{Tolerance{Count: -1}, 5, 0},
		{Tolerance{Percent: 10}, 9, 0},
		{Tolerance{Percent: 10}, 10, 1},
		{Tolerance{Percent: 10}, 30, 3},
		{Tolerance{Percent: 10}, 1000, 100},
		{Tolerance{Percent: 12.5}, 8, 1},
		{Tolerance{Percent: 100}, 7, 7},
		{Tolerance{Percent: 33.3}, 1000, 333},
		{Tolerance{}, 100, 0},
		{Tolerance{Percent: 50}, -4, 0},
	}
	for _, tt := range tests {
		if got := tt.t.Allowed(tt.total); got != tt.want {
			t.Errorf("%+v.Allowed(%d) = %d, want %d", tt.t, tt.total, got, tt.want)
		}
	}
}

func TestParseJump(t *testing.T) {
	tests := []struct {
		in   string
		want Jump
		str  string
	}{
		{"bastion", Jump{Host: "bastion", Port: 22}, "bastion:22"},
		{"ops@bastion.example.com:2222", Jump{User: "ops", Host: "bastion.example.com", Port: 2222}, "ops@bastion.example.com:2222"},
		{"10.0.0.9:22", Jump{Host: "10.0.0.9", Port: 22}, "10.0.0.9:22"},
		{"[2001:db8::1]:2200", Jump{Host: "2001:db8::1", Port: 2200}, "[2001:db8::1]:2200"},
		{"u@[::1]", Jump{User: "u", Host: "::1", Port: 22}, "u@[::1]:22"},
	}
	for _, tt := range tests {
		got, err := ParseJump(tt.in)
		if err != nil || got != tt.want || got.String() != tt.str {
			t.Errorf("ParseJump(%q) = %+v (%q), %v; want %+v", tt.in, got, got.String(), err, tt.want)
		}
	}
	for _, in := range []string{"", "@host", "u@", "host:", "host:0", "host:65536", "host:ssh", "a@b@c",
		"2001:db8::1", "[2001:db8::1", "[10.0.0.1]:22", "[::1]x", "[::1]:", "host;id", "$(id)", "u;id@host", "h:22:33", "host -oProxyCommand=x"} {
		if _, err := ParseJump(in); !errors.Is(err, ErrJump) {
			t.Errorf("ParseJump(%q) = %v, want ErrJump", in, err)
		}
	}
}

// seeds returns every fixture, good and bad, plus the example.
func seeds(f *testing.F) [][]byte {
	f.Helper()
	files, err := filepath.Glob("testdata/*/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	files = append(files, "../inventory.example.yaml")
	var out [][]byte
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, data)
	}
	return out
}

func FuzzParse(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		inv, err := Parse("fuzz.yaml", data)
		if err != nil {
			if !errors.Is(err, diag.ErrInvalid) {
				t.Fatalf("error does not match diag.ErrInvalid: %v", err)
			}
			return
		}
		if len(inv.Hosts) == 0 {
			t.Fatal("parsed an inventory without hosts")
		}
		for _, h := range inv.Hosts {
			if err := checkName(h.Name); err != nil {
				t.Fatalf("accepted bad host name %q: %v", h.Name, err)
			}
			if _, err := normalizeAddress(h.Address); err != nil {
				t.Fatalf("accepted bad address %q: %v", h.Address, err)
			}
			if h.Port < 1 || h.Port > 65535 {
				t.Fatalf("accepted port %d", h.Port)
			}
		}
		for _, r := range []string{RoleMaster, RoleShadow} {
			if len(inv.Roles[r]) != 1 {
				t.Fatalf("role %s has %d hosts", r, len(inv.Roles[r]))
			}
		}
		for r, hs := range inv.Roles {
			for _, h := range hs {
				if _, ok := inv.Host(h); !ok {
					t.Fatalf("role %s names unknown host %q", r, h)
				}
			}
		}
		voters := len(inv.Roles[RoleWitnesses]) + 1
		if inv.Policy.Quorum < 1 || inv.Policy.Quorum > voters {
			t.Fatalf("quorum %d with %d voters", inv.Policy.Quorum, voters)
		}
		if _, err := inv.Select([]string{"all"}); err != nil {
			t.Fatalf("Select(all): %v", err)
		}
		_ = inv.TemplateData()
	})
}

func FuzzExpandRange(f *testing.F) {
	for _, s := range []string{"gc[001-004]", "n[1-3,7,10-11]", "r[1-2]n[01-02]", "plain", "a[", "a]", "a[2-1]",
		"a[0-99999]", "x[1-2]y[3-4]z[5-6]", "[]", "a[1,,2]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, pattern string) {
		names, err := ExpandRange(pattern)
		if err != nil {
			if !errors.Is(err, ErrPattern) {
				t.Fatalf("error does not match ErrPattern: %v", err)
			}
			return
		}
		if len(names) == 0 || len(names) > MaxExpand {
			t.Fatalf("%d names", len(names))
		}
		if !strings.ContainsAny(pattern, "[]") {
			if len(names) != 1 || names[0] != pattern {
				t.Fatalf("plain pattern %q expanded to %q", pattern, names)
			}
			return
		}
		for _, n := range names {
			if strings.ContainsAny(n, "[]") {
				t.Fatalf("name %q still holds a bracket", n)
			}
		}
	})
}
