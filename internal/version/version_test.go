package version

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestGet(t *testing.T) {
	vcs := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.time", Value: "2026-12-01T10:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	tests := []struct {
		name            string
		ver, rev, when  string
		bi              *debug.BuildInfo
		wantV, wantC, d string
		modified        bool
	}{
		{"ldflags win", "1.2.0", "deadbeef", "2026-11-30T00:00:00Z", vcs, "1.2.0", "deadbeef", "2026-11-30T00:00:00Z", true},
		{"vcs fills in", "", "", "", vcs, "devel", "abc123", "2026-12-01T10:00:00Z", true},
		{"go install @version", "", "", "", &debug.BuildInfo{Main: debug.Module{Version: "v1.3.1"}}, "1.3.1", "unknown", "unknown", false},
		{"nothing known", "", "", "", nil, "devel", "unknown", "unknown", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := get(tt.ver, tt.rev, tt.when, tt.bi)
			if got.Version != tt.wantV || got.Commit != tt.wantC || got.Date != tt.d || got.Modified != tt.modified {
				t.Errorf("get = %+v, want version %q commit %q date %q modified %v", got, tt.wantV, tt.wantC, tt.d, tt.modified)
			}
			if got.GoVersion == "" || !strings.Contains(got.Platform, "/") {
				t.Errorf("go version %q, platform %q", got.GoVersion, got.Platform)
			}
		})
	}
}

func TestText(t *testing.T) {
	in := Info{Version: "1.2.0", Commit: "abc", Date: "2026-12-01T10:00:00Z", GoVersion: "go1.26.8", Platform: "linux/amd64", Modified: true}
	want := "sgerun 1.2.0\ncommit:   abc (modified)\nbuilt:    2026-12-01T10:00:00Z\ngo:       go1.26.8\nplatform: linux/amd64\n"
	if got := in.Text(); got != want {
		t.Errorf("Text:\n%s\nwant:\n%s", got, want)
	}
}
