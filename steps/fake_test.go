package steps

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/sgerun/sgerun/target"
)

// fakeTarget is a Target for unit tests. Exec and Query answer from
// scripted replies, the first whose substring (or regexp) matches the
// command; an unmatched command fails the test. Files live in a map that
// keeps data, mode and owner. Every Exec, Query and WriteFile is logged.
type fakeTarget struct {
	t       testing.TB
	name    string
	mu      sync.Mutex
	replies []fakeReply
	files   map[string]target.File
	calls   []fakeCall
}

// fakeReply answers the commands that contain sub or match re. do, when
// set, runs first (to change files, say) and may replace the output.
type fakeReply struct {
	sub string
	re  *regexp.Regexp
	out target.Output
	err error
	do  func(f *fakeTarget, cmd string) target.Output
}

// fakeCall is one logged call: op is "exec", "query" or "write".
type fakeCall struct {
	op, cmd string
	stdin   []byte
	path    string
	file    target.File
}

func newFake(t testing.TB, name string) *fakeTarget {
	return &fakeTarget{t: t, name: name, files: map[string]target.File{}}
}

// on answers commands containing sub with out.
func (f *fakeTarget) on(sub string, out target.Output) *fakeTarget {
	f.replies = append(f.replies, fakeReply{sub: sub, out: out})
	return f
}

// onRE answers commands matching the regexp expr with out.
func (f *fakeTarget) onRE(expr string, out target.Output) *fakeTarget {
	f.replies = append(f.replies, fakeReply{re: regexp.MustCompile(expr), out: out})
	return f
}

// onDo answers commands containing sub by calling do (without f's lock).
func (f *fakeTarget) onDo(sub string, do func(f *fakeTarget, cmd string) target.Output) *fakeTarget {
	f.replies = append(f.replies, fakeReply{sub: sub, do: do})
	return f
}

// onErr fails commands containing sub with a transport error.
func (f *fakeTarget) onErr(sub string, err error) *fakeTarget {
	f.replies = append(f.replies, fakeReply{sub: sub, err: err})
	return f
}

// put stores a file as if it were on the host.
func (f *fakeTarget) put(path, data string, file target.File) *fakeTarget {
	file.Data, file.Exists = []byte(data), true
	f.files[path] = file
	return f
}

func (f *fakeTarget) Name() string { return f.name }

func (f *fakeTarget) run(op, cmd string, stdin []byte) (target.Output, error) {
	f.mu.Lock()
	f.calls = append(f.calls, fakeCall{op: op, cmd: cmd, stdin: stdin})
	f.mu.Unlock()
	for _, r := range f.replies {
		if (r.re != nil && r.re.MatchString(cmd)) || (r.re == nil && strings.Contains(cmd, r.sub)) {
			if r.do != nil {
				return r.do(f, cmd), nil
			}
			return r.out, r.err
		}
	}
	f.t.Errorf("%s: unexpected %s %q", f.name, op, cmd)
	return target.Output{ExitCode: 127}, nil
}

func (f *fakeTarget) Query(_ context.Context, cmd string, stdin []byte) (target.Output, error) {
	return f.run("query", cmd, stdin)
}

func (f *fakeTarget) Exec(_ context.Context, cmd string, stdin []byte) (target.Output, error) {
	return f.run("exec", cmd, stdin)
}

func (f *fakeTarget) ReadFile(_ context.Context, p string) (target.File, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.files[p], nil
}

func (f *fakeTarget) WriteFile(_ context.Context, p string, file target.File) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	file.Exists = true
	f.files[p] = file
	f.calls = append(f.calls, fakeCall{op: "write", path: p, file: file})
	return nil
}

// cmds returns the commands of the logged calls of op ("exec", "query").
func (f *fakeTarget) cmds(op string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		if c.op == op {
			out = append(out, c.cmd)
		}
	}
	return out
}

// ran reports whether an Exec or Query contained sub.
func (f *fakeTarget) ran(sub string) bool {
	for _, op := range []string{"exec", "query"} {
		for _, c := range f.cmds(op) {
			if strings.Contains(c, sub) {
				return true
			}
		}
	}
	return false
}

// kindSpec decodes params (YAML) with kind's New and fails the test on an
// error.
func kindSpec(t testing.TB, kind, params string) Spec {
	t.Helper()
	s, err := newSpecErr(kind, params)
	if err != nil {
		t.Fatalf("%s %s: %v", kind, params, err)
	}
	return s
}

// newSpecErr decodes params (YAML) with kind's New.
func newSpecErr(kind, params string) (Spec, error) {
	k, ok := Kinds()[kind]
	if !ok {
		return nil, errors.New("no kind " + kind)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(params), &doc); err != nil {
		return nil, err
	}
	return k.New(doc.Content[0])
}

// journal is an Env.Prepare that keeps every record, with how many calls
// the target had logged when it was journaled (to check write-ahead).
type journal struct {
	f       *fakeTarget
	records []*target.UndoRecord
	at      []int
	err     error
}

func (j *journal) prepare(rec *target.UndoRecord) error {
	if j.err != nil {
		return j.err
	}
	j.f.mu.Lock()
	j.at = append(j.at, len(j.f.calls))
	j.f.mu.Unlock()
	j.records = append(j.records, rec)
	return nil
}
