package sshexec

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// BenchmarkResolve1000 measures what 1,000 hosts cost to resolve through
// ssh -G, as a Pool does it: concurrently, one process per host, bounded
// by the resolver's semaphore. Run it with
//
//	go test ./sshexec -run '^$' -bench Resolve1000 -benchtime 3x
//
// It reports the wall time for 1,000 hosts (ms/1000hosts).
func BenchmarkResolve1000(b *testing.B) {
	sshPath, err := exec.LookPath("ssh")
	if err != nil {
		b.Skip("no ssh client")
	}
	dir := b.TempDir()
	conf := filepath.Join(dir, "config")
	content := "Host gc*\n  User sge\n  Port 2222\n  IdentityFile %d/.ssh/id_%h\nHost gc1*\n  ProxyJump bastion\nHost *\n  ConnectTimeout 5\n"
	if err := os.WriteFile(conf, []byte(content), 0o600); err != nil {
		b.Fatal(err)
	}
	for _, mode := range []string{"classes", "per-host"} {
		b.Run(mode, func(b *testing.B) {
			var classes *classifier
			if mode == "classes" {
				if classes = newClassifier([]cfgFile{{path: conf, user: true}}, b.TempDir()); classes == nil {
					b.Fatal("config not classifiable")
				}
			}
			benchResolve(b, sshPath, conf, classes)
		})
	}
}

func benchResolve(b *testing.B, sshPath, conf string, classes *classifier) {
	var total time.Duration
	for i := 0; i < b.N; i++ {
		r := newResolver(sshPath, conf, nil, classes)
		start := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, 1000)
		for h := 0; h < 1000; h++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := r.resolve(context.Background(), query{dest: fmt.Sprintf("gc%04d", h)}); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		total += time.Since(start)
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/1000hosts")
}

// TestClassesAgreeWithSSHG proves the shortcut: for every destination, the
// answer derived from its class equals ssh -G's own answer for it.
func TestClassesAgreeWithSSHG(t *testing.T) {
	sshPath, err := exec.LookPath("ssh")
	if err != nil {
		t.Skip("no ssh client")
	}
	dir := t.TempDir()
	home := t.TempDir()
	inc := filepath.Join(dir, "inc.conf")
	conf := filepath.Join(dir, "config")
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(inc, "Host *.lab\n  User labuser\n  Port 2200\nHost db? !db9\n  HostName 10.0.0.9\n  ProxyJump gw\nHost mixed*\n  HostName MiXeD.Example\n")
	write(conf, `# site config
ConnectTimeout 7
Include `+inc+`
Host gc* !gc00*
  User sge
  IdentityFile %d/.ssh/id_%h
  CertificateFile ~/.ssh/%r.crt
Host GC*
  Port 2022
Host "quoted"
  HostKeyAlias q-alias
Host = eq
  StrictHostKeyChecking=accept-new
Host *
  ProxyCommand ssh -W %h:%p gw
  UserKnownHostsFile ~/kh1 ~/kh2
`)
	classes := newClassifier([]cfgFile{{path: conf, user: true}}, home)
	if classes == nil {
		t.Fatal("config not classifiable")
	}
	withClasses := newResolver(sshPath, conf, nil, classes)
	direct := newResolver(sshPath, conf, nil, nil)
	var dests []string
	for _, d := range []string{"gc0001", "gc0002", "gc1001", "gc1002", "GC1003", "Gc1004", "node.lab", "x.lab", "db1", "db2", "db9",
		"quoted", "eq", "other", "10.1.2.3", "gc", "gc00", "lab", "mixed1", "Mixed2"} {
		dests = append(dests, d)
	}
	queries := []query{}
	for _, d := range dests {
		queries = append(queries, query{dest: d}, query{dest: d, user: "u"}, query{dest: d, port: 2, hostname: "192.0.2.7"}, query{dest: d, hostname: "Upper.Example"})
	}
	ctx := context.Background()
	for _, q := range queries {
		got, err := withClasses.resolve(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		want, err := direct.resolve(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
			t.Errorf("%+v:\nclass  %+v\nssh -G %+v", q, got, want)
		}
	}
	if n, m := len(withClasses.cache), len(direct.cache); n >= m {
		t.Errorf("classes ran ssh -G %d times, per host %d", n, m)
	} else {
		t.Logf("ssh -G runs: %d with classes, %d per host", n, m)
	}
}

// TestClassifierGivesUp: what it cannot prove, it leaves to ssh -G.
func TestClassifierGivesUp(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"match":         "Match host x\n  Port 1\n",
		"token":         "Host *\n  UserKnownHostsFile ~/.ssh/kh_%h\n",
		"env":           "Host *\n  IdentityAgent ${AGENT}\n",
		"canonical":     "CanonicalizeHostname yes\n",
		"include-block": "Host a\n  Include other.conf\n",
		"hostname-%h":   "Host *\n  HostName %h.example\n",
		"quote":         "Host \"a\n",
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if c := newClassifier([]cfgFile{{path: p, user: true}}, dir); c != nil {
			t.Errorf("%s: classifier accepted %q", name, content)
		}
	}
}
