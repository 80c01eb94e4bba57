package steps

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/sgerun/sgerun/target"
	"go.yaml.in/yaml/v3"
)

// skSpec decodes a kind's parameters from YAML text, as a runbook holds
// them after rendering.
func skSpec(t *testing.T, kind, params string) (Spec, error) {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(params), &doc); err != nil {
		t.Fatalf("params: %v", err)
	}
	k, ok := Kinds()[kind]
	if !ok {
		t.Fatalf("no kind %s", kind)
	}
	return k.New(doc.Content[0])
}

// skMust is skSpec for parameters that must decode.
func skMust(t *testing.T, kind, params string) Spec {
	t.Helper()
	s, err := skSpec(t, kind, params)
	if err != nil {
		t.Fatalf("%s: %v", kind, err)
	}
	return s
}

const (
	skBootBDB     = "Version: 6.2\nadmin_user sgeadmin\nqmaster_spool_dir /spool/qmaster\nspooling_method berkeleydb\nspooling_params /spool/spooldb\n"
	skBootClassic = "qmaster_spool_dir /spool/qmaster\nspooling_method classic\nspooling_params /opt/sge/prod/common;/spool/classic\n"
	skBootRPC     = "qmaster_spool_dir /spool/qmaster\nspooling_method berkeleydb\nspooling_params rpcserver:/spool/spooldb\n"
)

func TestSGEBootstrap(t *testing.T) {
	tests := []struct {
		name, params, boot string
		want               map[string]any
		refused            bool
	}{
		{"bdb, records beside the spool", "{sge_root: /opt/sge, sge_cell: prod, copyable: true}", skBootBDB, map[string]any{
			"spooling_method": "berkeleydb", "spool_dir": "/spool/spooldb", "qmaster_spool_dir": "/spool/qmaster",
			"lock_file": "/spool/.sgerun-takeover.lock", "antiflap_file": "/spool/.sgerun-last-takeover.json",
			"pending_fence_file": "/spool/.sgerun-pending-fence.json"}, false},
		{"classic, shared_dir set", "{sge_root: /opt/sge, sge_cell: prod, shared_dir: /nfs/sgerun, copyable: true}", skBootClassic, map[string]any{
			"spooling_method": "classic", "spool_dir": "/spool/classic", "spooling_params": "/opt/sge/prod/common;/spool/classic",
			"record_dir": "/nfs/sgerun", "lock_file": "/nfs/sgerun/.sgerun-takeover.lock"}, false},
		{"rpc server refused", "{sge_root: /opt/sge, sge_cell: prod, copyable: true}", skBootRPC, nil, true},
		{"rpc server read when not copying", "{sge_root: /opt/sge, sge_cell: prod}", skBootRPC, map[string]any{
			"spool_dir": "rpcserver:/spool/spooldb"}, false},
		{"no directory for the records", "{sge_root: /opt/sge, sge_cell: prod}", "spooling_method classic\nspooling_params a;b\n", nil, true},
		{"relative qmaster_spool_dir, no shared_dir", "{sge_root: /opt/sge, sge_cell: prod}", "qmaster_spool_dir spool/qmaster\nspooling_method classic\n", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, "s").put("/opt/sge/prod/common/bootstrap", tc.boot, target.File{Mode: 0o444})
			s := skMust(t, "sge_bootstrap", tc.params)
			if s.Mutates() {
				t.Error("sge_bootstrap mutates")
			}
			res, err := s.Do(context.Background(), f, Runtime{})
			if tc.refused {
				if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "RPC server") && !strings.Contains(err.Error(), "no directory for sgerun's records") {
					t.Fatalf("err %v, want a refusal naming the RPC server or the missing record directory", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Stdout != tc.boot {
				t.Errorf("stdout %q, want the bootstrap text", res.Stdout)
			}
			for k, v := range tc.want {
				if res.Data[k] != v {
					t.Errorf("data %s = %v, want %v", k, res.Data[k], v)
				}
			}
			if len(f.cmds("exec")) != 0 {
				t.Errorf("ran %v", f.cmds("exec"))
			}
		})
	}
}

func TestSGEBootstrapMissing(t *testing.T) {
	_, err := skMust(t, "sge_bootstrap", "{sge_root: /opt/sge, sge_cell: prod}").Do(context.Background(), newFake(t, "s"), Runtime{})
	if err == nil || !strings.Contains(err.Error(), "/opt/sge/prod/common/bootstrap does not exist on s") {
		t.Fatalf("err %v, want the missing file named", err)
	}
}

// Every SGE kind refuses unknown keys and a cell that is no plain name.
func TestSGEKindsParams(t *testing.T) {
	kinds := map[string]string{
		"sge_bootstrap":        "",
		"sge_copy_spool":       ", stamp: '20261201000000'",
		"sge_common_shared":    ", reference: s",
		"sge_start_qmaster":    "",
		"sge_stop_qmaster":     "",
		"sge_restart_execd":    "",
		"sge_execd_reporting":  "",
		"sge_jobs_known":       "",
		"sge_jobs_in_transfer": "",
	}
	for kind, extra := range kinds {
		t.Run(kind, func(t *testing.T) {
			skMust(t, kind, "{sge_root: /opt/sge, sge_cell: prod"+extra+"}")
			for _, bad := range []string{
				"{sge_root: /opt/sge, sge_cell: prod, bogus: 1" + extra + "}",
				"{sge_root: opt/sge, sge_cell: prod" + extra + "}",
				"{sge_root: /opt/sge, sge_cell: ../x" + extra + "}",
				"{sge_root: /opt/sge" + extra + "}",
			} {
				if _, err := skSpec(t, kind, bad); err == nil {
					t.Errorf("%s accepted %s", kind, bad)
				}
			}
		})
	}
}
