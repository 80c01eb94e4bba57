// Package packaging holds the nfpm configuration of sgerun's deb and rpm
// and the test that builds them with `make package`, installs the deb and
// inspects the rpm.
package packaging

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// run runs a command and returns its standard output, failing the test
// (with the standard error) when it fails.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, stderr, err := runOut(name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr)
	}
	return out
}

// runErr runs a command and returns its combined output.
func runErr(name string, args ...string) (string, error) {
	out, stderr, err := runOut(name, args...)
	return out + stderr, err
}

func runOut(name string, args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	err := c.Run()
	return stdout.String(), stderr.String(), err
}

// TestPackages builds the .deb and .rpm with `make package`, checks their
// contents, installs the .deb (dpkg -i), checks the installed sgerun, its
// man pages, units, conffile and state dir, then removes and purges it,
// also when the test fails. It runs lintian on the .deb and inspects the
// .rpm with rpm -qlp.
func TestPackages(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: no package build")
	}
	if os.Geteuid() != 0 {
		t.Skip("installing the .deb needs root")
	}
	// On a developer's machine the test steps aside for what it must not
	// replace; CI's fresh machine has none of it, so there it fails.
	stepAside := t.Skipf
	if os.Getenv("CI") != "" {
		stepAside = t.Fatalf
	}
	for _, tool := range []string{"make", "git", "file", "dpkg", "dpkg-deb", "dpkg-query"} {
		if _, err := exec.LookPath(tool); err != nil {
			stepAside("%s not found (.ci/install-deps installs it on Debian)", tool)
		}
	}
	if out, err := runErr("dpkg-query", "-W", "-f", "${Status}", "sgerun"); err == nil && strings.Contains(out, "installed") {
		stepAside("a sgerun package is installed on this machine; the test does not replace it")
	}
	for _, p := range []string{"/etc/sgerun", "/usr/bin/sgerun"} {
		if _, err := os.Lstat(p); err == nil {
			stepAside("%s exists and is not from a package; the test does not touch it", p)
		}
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dist := t.TempDir()
	start := time.Now()
	run(t, "make", "-C", root, "package", "DIST="+dist)
	t.Logf("make package: %v", time.Since(start).Round(time.Millisecond))
	debs, _ := filepath.Glob(filepath.Join(dist, "*.deb"))
	rpms, _ := filepath.Glob(filepath.Join(dist, "*.rpm"))
	if len(debs) != 1 || len(rpms) != 1 {
		t.Fatalf("make package made %v and %v, want one .deb and one .rpm", debs, rpms)
	}
	deb, rpm := debs[0], rpms[0]
	for _, p := range []string{deb, rpm} {
		if fi, err := os.Stat(p); err == nil {
			t.Logf("%s: %.1f MiB", filepath.Base(p), float64(fi.Size())/(1<<20))
		}
	}
	commit := strings.TrimSpace(run(t, "git", "-C", root, "rev-parse", "HEAD"))
	version := strings.TrimSpace(run(t, "dpkg-deb", "-f", deb, "Version"))
	release, _, ok := strings.Cut(version, "-")
	if !ok || !regexp.MustCompile(`^\d+\.\d+\.\d+`).MatchString(release) {
		t.Fatalf("deb Version %q, want X.Y.Z[~...]-REVISION", version)
	}

	t.Run("deb contents", func(t *testing.T) {
		if arch := strings.TrimSpace(run(t, "dpkg-deb", "-f", deb, "Architecture")); arch != strings.TrimSpace(run(t, "dpkg", "--print-architecture")) {
			t.Errorf("Architecture %q", arch)
		}
		list := run(t, "dpkg-deb", "-c", deb)
		checkListing(t, list, map[string]string{
			"./usr/bin/sgerun":                                  "-rwxr-xr-x",
			"./etc/sgerun/inventory.yaml":                       "-rw-------",
			"./var/lib/sgerun/":                                 "drwx------",
			"./lib/systemd/system/sgerun-watch.service":         "-rw-r--r--",
			"./lib/systemd/system/sgerun-check.service":         "-rw-r--r--",
			"./lib/systemd/system/sgerun-check.timer":           "-rw-r--r--",
			"./usr/share/man/man8/sgerun.8.gz":                  "-rw-r--r--",
			"./usr/share/man/man8/sgerun-takeover.8.gz":         "-rw-r--r--",
			"./usr/share/man/man5/sgerun-inventory.5.gz":        "-rw-r--r--",
			"./usr/share/bash-completion/completions/sgerun":    "-rw-r--r--",
			"./usr/share/zsh/vendor-completions/_sgerun":        "-rw-r--r--",
			"./usr/share/fish/vendor_completions.d/sgerun.fish": "-rw-r--r--",
			"./usr/share/doc/sgerun/copyright":                  "-rw-r--r--",
			"./usr/share/doc/sgerun/changelog.Debian.gz":        "-rw-r--r--",
		})
		if c := run(t, "sh", "-c", "dpkg-deb --ctrl-tarfile \"$1\" | tar -xOf - ./conffiles", "sh", deb); strings.TrimSpace(c) != "/etc/sgerun/inventory.yaml" {
			t.Errorf("conffiles: %q, want /etc/sgerun/inventory.yaml", c)
		}
		// No maintainer script enables or starts a unit.
		ctrl := run(t, "sh", "-c", "dpkg-deb --ctrl-tarfile \"$1\" | tar -tf -", "sh", deb)
		for _, s := range []string{"postinst", "prerm", "postrm", "preinst"} {
			if strings.Contains(ctrl, s) {
				t.Errorf("the deb has a %s script:\n%s", s, ctrl)
			}
		}
		// The binary is static.
		dir := t.TempDir()
		run(t, "dpkg-deb", "-x", deb, dir)
		if f := run(t, "file", "-b", filepath.Join(dir, "usr/bin/sgerun")); !strings.Contains(f, "statically linked") {
			t.Errorf("/usr/bin/sgerun: %s, want a statically linked binary", f)
		}
	})

	t.Run("lintian", func(t *testing.T) {
		if _, err := exec.LookPath("lintian"); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("lintian is not installed (.ci/install-deps installs it)")
			}
			t.Skip("lintian is not installed")
		}
		out, err := runErr("lintian", "--pedantic", "--fail-on", "error", deb)
		t.Logf("lintian --pedantic:\n%s", out)
		if err != nil || regexp.MustCompile(`(?m)^E: `).MatchString(out) {
			t.Errorf("lintian reports errors (%v)", err)
		}
		// The one override (packaging/lintian-overrides) is the static Go
		// binary; nothing else may hide behind it.
		all, _ := runErr("lintian", "--pedantic", "--show-overrides", deb)
		for _, l := range regexp.MustCompile(`(?m)^O: .*$`).FindAllString(all, -1) {
			if l != "O: sgerun: statically-linked-binary [usr/bin/sgerun]" {
				t.Errorf("unexpected lintian override: %s", l)
			}
		}
	})

	t.Run("rpm", func(t *testing.T) {
		// The rpm as the package's own header says (read here, no tool
		// needed), and, where rpm is installed (CI), as rpm -qlvp does:
		// the two must agree.
		info, err := readRPM(rpm)
		if err != nil {
			t.Fatal(err)
		}
		if info.Name != "sgerun" || info.Version != release || info.Release != "1" || info.Arch == "" {
			t.Errorf("rpm name/version/release/arch %s %s %s %s, want sgerun %s 1", info.Name, info.Version, info.Release, info.Arch, release)
		}
		want := map[string]string{
			"/usr/bin/sgerun":                                  "-rwxr-xr-x",
			"/etc/sgerun/inventory.yaml":                       "-rw-------",
			"/var/lib/sgerun":                                  "drwx------",
			"/usr/lib/systemd/system/sgerun-watch.service":     "-rw-r--r--",
			"/usr/lib/systemd/system/sgerun-check.timer":       "-rw-r--r--",
			"/usr/share/man/man8/sgerun.8.gz":                  "-rw-r--r--",
			"/usr/share/man/man5/sgerun-inventory.5.gz":        "-rw-r--r--",
			"/usr/share/bash-completion/completions/sgerun":    "-rw-r--r--",
			"/usr/share/zsh/site-functions/_sgerun":            "-rw-r--r--",
			"/usr/share/fish/vendor_completions.d/sgerun.fish": "-rw-r--r--",
		}
		checkListing(t, info.listing(), want)
		if strings.Join(info.Config, " ") != "/etc/sgerun/inventory.yaml" {
			t.Errorf("rpm config files: %q", info.Config)
		}
		for p := range info.Files {
			if strings.HasPrefix(p, "/lib/") || strings.Contains(p, "vendor-completions") || strings.Contains(p, "lintian") {
				t.Errorf("rpm has the deb's file %s", p)
			}
		}

		if _, err := exec.LookPath("rpm"); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("rpm is not installed (.ci/install-deps installs it)")
			}
			t.Skip("rpm is not installed: checked from the rpm header only")
		}
		q := run(t, "rpm", "-qp", "--queryformat", "%{NAME} %{VERSION} %{RELEASE} %{ARCH}", rpm)
		if q != strings.Join([]string{info.Name, info.Version, info.Release, info.Arch}, " ") {
			t.Errorf("rpm -qp: %q, the header read: %+v", q, info)
		}
		list := run(t, "rpm", "-qlvp", rpm)
		checkListing(t, list, want)
		n := 0
		for _, l := range strings.Split(strings.TrimSpace(list), "\n") {
			f := strings.Fields(l)
			if m, ok := info.Files[f[len(f)-1]]; !ok || m.String() != f[0] {
				t.Errorf("rpm -qlvp lists %q; the header read has mode %v", l, m)
			}
			n++
		}
		if n != len(info.Files) {
			t.Errorf("rpm -qlvp lists %d files, the header read %d", n, len(info.Files))
		}
		if c := run(t, "rpm", "-qcp", rpm); strings.TrimSpace(c) != "/etc/sgerun/inventory.yaml" {
			t.Errorf("rpm -qcp: %q", c)
		}
	})

	t.Run("install", func(t *testing.T) {
		// Registered first: the package goes, conffile and all, whatever
		// fails below.
		t.Cleanup(func() {
			if out, err := runErr("dpkg", "--purge", "sgerun"); err != nil {
				t.Errorf("dpkg --purge sgerun: %v\n%s", err, out)
			}
		})
		// Some images exclude man pages from every package
		// (/etc/dpkg/dpkg.cfg.d); the test wants them.
		run(t, "dpkg", "--path-include=/usr/share/man/*", "-i", deb)

		got := run(t, "/usr/bin/sgerun", "--version")
		if !strings.HasPrefix(got, "sgerun "+release+"\n") || !strings.Contains(got, "commit:   "+commit) ||
			!strings.Contains(got, "go:       go1.") {
			t.Errorf("sgerun --version:\n%s\nwant version %s, commit %s", got, release, commit)
		}
		if v := run(t, "/usr/bin/sgerun", "version"); v != got {
			t.Errorf("sgerun version differs from --version:\n%s", v)
		}
		if _, err := exec.LookPath("man"); err == nil {
			for page, want := range map[string]string{"sgerun": "/usr/share/man/man8/sgerun.8.gz",
				"sgerun-takeover":  "/usr/share/man/man8/sgerun-takeover.8.gz",
				"sgerun-inventory": "/usr/share/man/man5/sgerun-inventory.5.gz"} {
				if w := strings.TrimSpace(run(t, "man", "-w", page)); w != want {
					t.Errorf("man -w %s = %q, want %s", page, w, want)
				}
			}
		} else if os.Getenv("CI") != "" {
			t.Errorf("man is not installed (.ci/install-deps installs man-db)")
		}
		page := run(t, "sh", "-c", "zcat /usr/share/man/man5/sgerun-inventory.5.gz")
		for _, want := range []string{".TH SGERUN-INVENTORY 5", "sge_root: /engrid/ensge", "/etc/sgerun/inventory.yaml"} {
			if !strings.Contains(page, want) {
				t.Errorf("sgerun-inventory(5) lacks %q", want)
			}
		}
		if page := run(t, "sh", "-c", "zcat /usr/share/man/man8/sgerun.8.gz"); !strings.Contains(page, "takeover") {
			t.Errorf("sgerun(8) does not mention takeover:\n%s", page)
		}

		for _, u := range []string{"sgerun-watch.service", "sgerun-check.service", "sgerun-check.timer"} {
			text := readFile(t, "/lib/systemd/system/"+u)
			if strings.HasSuffix(u, ".service") && !strings.Contains(text, "ExecStart=/usr/bin/sgerun ") {
				t.Errorf("%s does not run /usr/bin/sgerun:\n%s", u, text)
			}
			// Installed, not enabled.
			if links, _ := filepath.Glob("/etc/systemd/system/*.wants/" + u); len(links) > 0 {
				t.Errorf("%s is enabled: %v", u, links)
			}
		}

		// The units as systemd reads them: syntax, ExecStart executable,
		// Documentation= man pages present.
		if _, err := exec.LookPath("systemd-analyze"); err == nil {
			if out, err := runErr("systemd-analyze", "verify", "/lib/systemd/system/sgerun-watch.service",
				"/lib/systemd/system/sgerun-check.service", "/lib/systemd/system/sgerun-check.timer"); err != nil {
				t.Errorf("systemd-analyze verify: %v\n%s", err, out)
			}
		}

		conffiles := run(t, "dpkg-query", "-W", "-f", "${Conffiles}", "sgerun")
		if !strings.Contains(conffiles, "/etc/sgerun/inventory.yaml ") {
			t.Errorf("dpkg conffiles: %q", conffiles)
		}
		checkMode(t, "/etc/sgerun/inventory.yaml", 0o600)
		checkMode(t, "/var/lib/sgerun", os.ModeDir|0o700)
		example := readFile(t, filepath.Join(root, "inventory.example.yaml"))
		if readFile(t, "/etc/sgerun/inventory.yaml") != example {
			t.Errorf("/etc/sgerun/inventory.yaml is not inventory.example.yaml")
		}

		// The head node's defaults: without --inventory or
		// $SGERUN_INVENTORY, sgerun reads /etc/sgerun/inventory.yaml.
		rb := filepath.Join(t.TempDir(), "takeover.yaml")
		if err := os.WriteFile(rb, []byte(run(t, "/usr/bin/sgerun", "playbook", "show", "takeover")), 0o600); err != nil {
			t.Fatal(err)
		}
		c := exec.Command("/usr/bin/sgerun", "validate", rb)
		c.Env = withoutEnv(os.Environ(), "SGERUN_INVENTORY", "SGERUN_STATE_DIR")
		out, err := c.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "inventory /etc/sgerun/inventory.yaml") {
			t.Errorf("sgerun validate without --inventory: %v\n%s", err, out)
		}
		if out := run(t, "bash", "-c", "source /usr/share/bash-completion/completions/sgerun && complete -p sgerun"); !strings.Contains(out, "sgerun") {
			t.Errorf("bash completion: %s", out)
		}

		// Removal keeps the conffile; purge (the cleanup) removes it.
		run(t, "dpkg", "-r", "sgerun")
		if _, err := os.Stat("/usr/bin/sgerun"); err == nil {
			t.Errorf("/usr/bin/sgerun left after dpkg -r")
		}
		if _, err := os.Stat("/etc/sgerun/inventory.yaml"); err != nil {
			t.Errorf("dpkg -r removed the conffile: %v", err)
		}
	})
	if _, err := os.Stat("/etc/sgerun/inventory.yaml"); err == nil {
		t.Errorf("/etc/sgerun/inventory.yaml left after dpkg --purge")
	}
}

// checkListing checks that a package listing (dpkg-deb -c, rpm -qlv) has
// each path with its mode string.
func checkListing(t *testing.T, list string, want map[string]string) {
	t.Helper()
	modes := map[string]string{}
	for _, l := range strings.Split(list, "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		modes[f[len(f)-1]] = f[0]
	}
	for p, mode := range want {
		if got, ok := modes[p]; !ok {
			t.Errorf("%s is missing from the package:\n%s", p, list)
		} else if got != mode {
			t.Errorf("%s: mode %s, want %s", p, got, mode)
		}
	}
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Error(err)
		return
	}
	if fi.Mode() != want {
		t.Errorf("%s: mode %v, want %v", path, fi.Mode(), want)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func withoutEnv(env []string, names ...string) []string {
	var out []string
next:
	for _, kv := range env {
		for _, n := range names {
			if strings.HasPrefix(kv, n+"=") {
				continue next
			}
		}
		out = append(out, kv)
	}
	return out
}
