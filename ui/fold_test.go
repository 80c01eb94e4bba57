package ui

import (
	"fmt"
	"reflect"
	"testing"
)

func TestFold(t *testing.T) {
	n := func(prefix string, lo, hi int, format string) []string {
		var out []string
		for i := lo; i <= hi; i++ {
			out = append(out, prefix+fmt.Sprintf(format, i))
		}
		return out
	}
	tests := []struct {
		in   []string
		want string
	}{
		{nil, ""},
		{[]string{"master"}, "master"},
		{[]string{"gc001", "gc002", "gc003", "gc007"}, "gc[001-003,007]"},
		{[]string{"gc007", "gc001", "gc003", "gc002"}, "gc[001-003,007]"},
		{n("host", 0, 49, "%d"), "host[0-49]"},
		{[]string{"host1"}, "host1"},
		{[]string{"n1", "n2", "n10", "n11"}, "n[1-2,10-11]"},
		{[]string{"n01", "n1"}, "n01,n1"},
		{[]string{"a1", "b1", "a2"}, "a[1-2],b1"},
		{[]string{"node-a", "n1", "n2"}, "n[1-2],node-a"},
		{[]string{"x12345678901"}, "x12345678901"},
	}
	for _, tc := range tests {
		if got := Fold(tc.in); got != tc.want {
			t.Errorf("Fold(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestGroup(t *testing.T) {
	by := map[string]string{}
	for i := range 50 {
		by[fmt.Sprintf("host%d", i)] = "same\n"
	}
	by["host7"], by["host30"] = "odd\n", "odd\n"
	by["host40"] = "alone\n"
	got := Group(by)
	want := []TextGroup{
		{Hosts: nil, Text: "same\n"},
		{Hosts: []string{"host30", "host7"}, Text: "odd\n"},
		{Hosts: []string{"host40"}, Text: "alone\n"},
	}
	if len(got) != 3 {
		t.Fatalf("got %d groups: %+v", len(got), got)
	}
	if got[0].Text != want[0].Text || len(got[0].Hosts) != 47 {
		t.Errorf("group 0 = %d hosts %q", len(got[0].Hosts), got[0].Text)
	}
	if Fold(got[0].Hosts) != "host[0-6,8-29,31-39,41-49]" {
		t.Errorf("group 0 folds to %s", Fold(got[0].Hosts))
	}
	for i := 1; i < 3; i++ {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("group %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if g := Group(map[string]string{}); len(g) != 0 {
		t.Errorf("empty: %+v", g)
	}
}
