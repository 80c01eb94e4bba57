package steps

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/sgerun/sgerun/target"
)

var errNoRoute = errors.New("dial tcp: connect: no route to host")

func TestFence(t *testing.T) {
	fenced := target.Output{Stdout: "qmaster pids: 42; shadowd pids: none\nfenced: no sge_qmaster or sge_shadowd runs on m\n"}
	tests := []struct {
		name string
		// reach maps "" (own address) and the fence address to whether
		// SSH connects there.
		reach    map[string]bool
		command  target.Output // the fence_command's result; zero: no command
		unfenced bool
		confirm  *bool // nil: nobody to ask
		pending  bool
		method   string
		refused  bool
	}{
		{name: "own address", reach: map[string]bool{"": true}, method: FenceSSH},
		{name: "fence address when the own one is cut", reach: map[string]bool{"10.1.0.1": true}, method: FenceAddress},
		{name: "command when no SSH works", command: target.Output{Stdout: "Chassis Power Control: Down/Off"}, method: FenceCommand},
		{name: "no way: refused", command: target.Output{ExitCode: 1, Stderr: "ipmi timeout"}, refused: true},
		{name: "no way, --unfenced", unfenced: true, method: FenceUnfenced},
		{name: "no way, operator says yes", confirm: ptr(true), method: FenceUnfenced},
		{name: "no way, operator says no", confirm: ptr(false), refused: true},
		{name: "no way, sgerun fence records it", pending: true, method: FencePendingSaved},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			local := newFake(t, "controller").on("SGERUN_FENCE_HOST", tc.command)
			master := newFake(t, "m").on("pgrep -x sge_qmaster", fenced)
			shadow := newFake(t, "s")
			env := Runtime{Connect: func(_ context.Context, host, address string) (target.Target, error) {
				if host == "s" {
					return shadow, nil
				}
				if tc.reach[address] {
					return master, nil
				}
				return nil, errNoRoute
			}}
			if tc.confirm != nil {
				env.Confirm = func(_ context.Context, q, answer string) (bool, error) {
					if !strings.Contains(q, "cannot be fenced") || answer != "unfenced" {
						t.Errorf("question %q answer %q", q, answer)
					}
					return *tc.confirm, nil
				}
			}
			s := &fenceSpec{Master: "m", Address: "10.1.0.1", PIDFile: "/spool/qmaster/qmaster.pid", RunID: "r1",
				Unfenced: tc.unfenced, Timeout: 10e9}
			if tc.command != (target.Output{}) {
				s.Command = "ipmitool power off"
			}
			if tc.pending {
				s.Pending, s.PendingHost = "/spool/.sgerun-pending-fence.json", "s"
			}
			res, err := s.Do(context.Background(), local, env)
			if tc.refused {
				if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "cannot fence the old master m") {
					t.Fatalf("err = %v, want a refusal naming the master", err)
				}
				if !strings.Contains(err.Error(), "no route to host") || !strings.Contains(err.Error(), "--unfenced") {
					t.Errorf("refusal %q does not give every way's cause and the way out", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if res.Data["method"] != tc.method {
				t.Errorf("method %v, want %s", res.Data["method"], tc.method)
			}
			switch tc.method {
			case FenceSSH, FenceAddress:
				execs := master.cmds("exec")
				if len(execs) != 1 || !strings.Contains(execs[0], "kill -KILL $pids $shadow") ||
					!strings.Contains(execs[0], "pgrep -x sge_shadowd") || !strings.Contains(execs[0], "update-rc.d") {
					t.Errorf("fence script %q: want SIGKILL of qmaster and shadowd and autostart disabled", execs)
				}
			case FenceUnfenced:
				var rec PendingFence
				if err := json.Unmarshal([]byte(res.Data["pending_record"].(string)), &rec); err != nil || rec.Master != "m" || rec.RunID != "r1" {
					t.Errorf("pending record %v (%v)", res.Data["pending_record"], err)
				}
				if !strings.HasPrefix(res.Warning, "UNFENCED") {
					t.Errorf("warning %q, want it to say UNFENCED", res.Warning)
				}
			case FencePendingSaved:
				if f := shadow.files["/spool/.sgerun-pending-fence.json"]; !f.Exists || !strings.Contains(string(f.Data), `"master":"m"`) {
					t.Errorf("pending record not written: %+v", f)
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
