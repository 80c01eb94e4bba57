// Package version tells which sgerun this binary is: the release version,
// git commit and build date set by the build with -ldflags -X, completed
// from the Go toolchain's build info when the build did not set them.
//
// The three variables below are the module's only package-level variables
// that are written, and only by the linker:
//
//	go build -ldflags "-X github.com/sgerun/sgerun/internal/version.version=1.2.0 \
//	  -X github.com/sgerun/sgerun/internal/version.commit=$(git rev-parse HEAD) \
//	  -X github.com/sgerun/sgerun/internal/version.date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Set by the linker (make build, make package); empty in a plain go build.
var (
	version string
	commit  string
	date    string
)

// Info is what `sgerun version` prints.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	Date      string `json:"date"`
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"`
	// Modified is true when the build info says the work tree had
	// uncommitted changes.
	Modified bool `json:"modified,omitempty"`
}

// Get returns the binary's version information. Values the linker did not
// set come from the build info (the module version of a `go install
// ...@v1.2.0`, the VCS revision and time of a build in a git checkout), or
// read "unknown"; the version of a development build is "devel".
func Get() Info {
	bi, _ := debug.ReadBuildInfo()
	return get(version, commit, date, bi)
}

// String is the version alone, as the journal records it.
func String() string { return Get().Version }

func get(ver, rev, when string, bi *debug.BuildInfo) Info {
	in := Info{Version: ver, Commit: rev, Date: when, GoVersion: runtime.Version(),
		Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi != nil {
		if bi.GoVersion != "" {
			in.GoVersion = bi.GoVersion
		}
		if in.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			in.Version = strings.TrimPrefix(bi.Main.Version, "v")
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if in.Commit == "" {
					in.Commit = s.Value
				}
			case "vcs.time":
				if in.Date == "" {
					in.Date = s.Value
				}
			case "vcs.modified":
				in.Modified = s.Value == "true"
			}
		}
	}
	if in.Version == "" {
		in.Version = "devel"
	}
	if in.Commit == "" {
		in.Commit = "unknown"
	}
	if in.Date == "" {
		in.Date = "unknown"
	}
	return in
}

// Text is the multi-line form of `sgerun version`.
func (in Info) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sgerun %s\n", in.Version)
	c := in.Commit
	if in.Modified {
		c += " (modified)"
	}
	fmt.Fprintf(&b, "commit:   %s\nbuilt:    %s\ngo:       %s\nplatform: %s\n", c, in.Date, in.GoVersion, in.Platform)
	return b.String()
}
