package status

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/sgerun/sgerun/inventory"
	"github.com/sgerun/sgerun/target"
)

// filesTarget serves files and answers the heartbeat query.
type filesTarget struct {
	files   map[string]string
	queries []string
}

func (f *filesTarget) Name() string { return "s" }
func (f *filesTarget) Query(_ context.Context, cmd string, _ []byte) (target.Output, error) {
	f.queries = append(f.queries, cmd)
	return target.Output{Stdout: "17\n"}, nil
}
func (f *filesTarget) Exec(context.Context, string, []byte) (target.Output, error) {
	return target.Output{}, errMutates
}
func (f *filesTarget) ReadFile(_ context.Context, p string) (target.File, error) {
	d, ok := f.files[p]
	return target.File{Data: []byte(d), Exists: ok}, nil
}
func (f *filesTarget) WriteFile(context.Context, string, target.File) error {
	return errMutates
}

var errMutates = errors.New("status must not change a host")

// readShared finds the record files where the gate and the fence write
// them: shared_dir, else beside qmaster_spool_dir.
func TestReadShared(t *testing.T) {
	files := map[string]string{
		"/sge/c/common/bootstrap":                "qmaster_spool_dir /export/sge/qmaster\nspooling_params   /export/sge/db\n",
		"/export/sge/.sgerun-pending-fence.json": `{"time":"2026-01-02T03:04:05Z","run_id":"r1","master":"m","reason":"no way"}`,
		"/export/sge/.sgerun-last-takeover.json": `{"time":"2026-01-02T03:04:05Z","run_id":"r1","from":"m","to":"s"}`,
		"/shared/.sgerun-last-takeover.json":     `{"time":"2026-01-02T03:04:05Z","run_id":"r2","from":"s","to":"m"}`,
	}
	tests := []struct {
		shared, dir, lastRun string
		pending              bool
	}{
		{"", "/export/sge", "r1", true},
		{"/shared", "/shared", "r2", false},
	}
	for _, tt := range tests {
		ft := &filesTarget{files: files}
		r := &Report{HeartbeatAge: -1}
		r.readShared(context.Background(), ft, inventory.Cluster{SGERoot: "/sge", SGECell: "c", SharedDir: tt.shared})
		if r.SharedDir != tt.dir || r.QmasterSpoolDir != "/export/sge/qmaster" || r.SpoolingParams != "/export/sge/db" || r.HeartbeatAge != 17 {
			t.Errorf("shared %q: report %+v", tt.shared, r)
		}
		if len(ft.queries) != 1 || !strings.Contains(ft.queries[0], "/export/sge/qmaster/heartbeat") {
			t.Errorf("heartbeat query %q", ft.queries)
		}
		if r.LastTakeover == nil || r.LastTakeover.RunID != tt.lastRun || (r.PendingFence != nil) != tt.pending {
			t.Errorf("shared %q: last takeover %+v pending %+v", tt.shared, r.LastTakeover, r.PendingFence)
		}
	}
	r := &Report{}
	r.readShared(context.Background(), &filesTarget{}, inventory.Cluster{SGERoot: "/sge", SGECell: "c"})
	if len(r.Problems) != 1 || r.Problems[0] != "cannot read bootstrap" {
		t.Errorf("no bootstrap: %v", r.Problems)
	}
}
