package steps

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/sgerun/sgerun/target"
)

// tableTarget answers commands from a table: the first key contained in the
// command picks the output. Unmatched commands fail the test.
type tableTarget struct {
	t     *testing.T
	name  string
	mu    sync.Mutex
	execs []string
	out   map[string]target.Output
	files map[string]target.File
}

func (f *tableTarget) Name() string { return f.name }

func (f *tableTarget) run(cmd string) (target.Output, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.execs = append(f.execs, cmd)
	for k, o := range f.out {
		if strings.Contains(cmd, k) {
			return o, nil
		}
	}
	f.t.Errorf("%s: unexpected command %q", f.name, cmd)
	return target.Output{ExitCode: 127}, nil
}

func (f *tableTarget) Query(_ context.Context, cmd string, _ []byte) (target.Output, error) {
	return f.run(cmd)
}
func (f *tableTarget) Exec(_ context.Context, cmd string, _ []byte) (target.Output, error) {
	return f.run(cmd)
}
func (f *tableTarget) ReadFile(_ context.Context, p string) (target.File, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.files[p], nil
}
func (f *tableTarget) WriteFile(_ context.Context, p string, file target.File) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.files == nil {
		f.files = map[string]target.File{}
	}
	file.Exists = true
	f.files[p] = file
	return nil
}
