package steps

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sgerun/sgerun/target"
)

// fenceEnv connects the master's own address ("") and its fence address to
// the given targets; a missing one does not connect. It logs every dial.
func fenceEnv(targets map[string]target.Target, dials *[]string) Runtime {
	var mu sync.Mutex
	return Runtime{Connect: func(_ context.Context, host, address string) (target.Target, error) {
		mu.Lock()
		*dials = append(*dials, host+"@"+address)
		mu.Unlock()
		if t, ok := targets[host+"@"+address]; ok {
			return t, nil
		}
		return nil, errNoRoute
	}}
}

func TestFenceProof(t *testing.T) {
	proved := target.Output{Stdout: "qmaster pids: 42; shadowd pids: none\nfenced: no sge_qmaster or sge_shadowd runs on m\n"}
	stillRunning := target.Output{ExitCode: 1, Stdout: "qmaster pids: 42; shadowd pids: none\nstill running: 42\n"}
	tests := []struct {
		name      string
		own, addr *target.Output // the fence script's result there; nil: no SSH
		noOwn     bool           // own_address: false
		command   *target.Output // the fence_command's result; nil: none
		method    string
		refused   string // substring of the refusal; "" none
	}{
		{name: "own address proves it", own: &proved, method: FenceSSH},
		{name: "no proof over the own address: the fence address", own: &stillRunning, addr: &proved, method: FenceAddress},
		{name: "own_address false dials only the fence address", noOwn: true, own: &proved, addr: &proved, method: FenceAddress},
		{name: "no proof anywhere, then the command", own: &stillRunning, addr: &stillRunning,
			command: &target.Output{Stdout: "Chassis Power Control: Down/Off\n"}, method: FenceCommand},
		{name: "no proof anywhere, no command: refused with every cause", own: &stillRunning, addr: &stillRunning,
			refused: "still running: 42"},
		{name: "failed command: refused with its stderr", command: &target.Output{ExitCode: 1, Stderr: "ipmi: timeout"}, refused: "fence_command: exit 1: ipmi: timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			targets := map[string]target.Target{}
			own, addr := newFake(t, "m"), newFake(t, "m-fence")
			if tt.own != nil {
				own.on("pgrep -x sge_qmaster", *tt.own)
				targets["m@"] = own
			}
			if tt.addr != nil {
				addr.on("pgrep -x sge_qmaster", *tt.addr)
				targets["m@10.1.0.1"] = addr
			}
			local := newFake(t, "controller")
			s := &fenceSpec{Master: "m", Address: "10.1.0.1", PIDFile: "/spool/q m/qmaster.pid", Timeout: 10 * time.Second}
			if tt.noOwn {
				s.OwnAddress = ptr(false)
			}
			if tt.command != nil {
				s.Command = "ipmitool -H $SGERUN_FENCE_ADDRESS power off"
				local.on("ipmitool", *tt.command)
			}
			var dials []string
			res, err := s.Do(context.Background(), local, fenceEnv(targets, &dials))
			if tt.refused != "" {
				if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tt.refused) {
					t.Fatalf("err = %v, want a refusal with %q", err, tt.refused)
				}
				if res.Data["method"] != "" {
					t.Errorf("refused, but method %v", res.Data["method"])
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Data["method"] != tt.method || !res.Changed {
				t.Errorf("method %v changed %v, want %s", res.Data["method"], res.Changed, tt.method)
			}
			for _, d := range dials {
				if tt.noOwn && d == "m@" {
					t.Errorf("own_address false, but dialled %v", dials)
				}
			}
			switch tt.method {
			case FenceSSH, FenceAddress:
				via := own
				if tt.method == FenceAddress {
					via = addr
				}
				c := via.cmds("exec")
				if len(c) != 1 || !strings.Contains(c[0], "pidfile='/spool/q m/qmaster.pid'") || !strings.Contains(c[0], "kill -KILL $pids $shadow") {
					t.Errorf("fence script over %s: %q", via.name, c)
				}
				if !strings.Contains(res.Data["detail"].(string), "fenced: no sge_qmaster") {
					t.Errorf("detail %q lacks the proof", res.Data["detail"])
				}
				if len(local.cmds("exec")) != 0 {
					t.Errorf("fence_command ran although SSH fenced")
				}
			case FenceCommand:
				c := local.cmds("exec")
				if len(c) != 1 || !strings.HasPrefix(c[0], "SGERUN_FENCE_HOST=m SGERUN_FENCE_ADDRESS=10.1.0.1 ; export SGERUN_FENCE_HOST SGERUN_FENCE_ADDRESS; ipmitool") {
					t.Errorf("fence_command %q", c)
				}
			}
		})
	}
}

func TestFenceQuotesTheCommandsEnvironment(t *testing.T) {
	local := newFake(t, "controller").on("poweroff", target.Output{})
	s := &fenceSpec{Master: "m;rm", Address: "$(x)", Command: "poweroff", OwnAddress: ptr(false), Timeout: time.Second}
	if _, err := s.Do(context.Background(), local, Runtime{}); err != nil {
		t.Fatal(err)
	}
	if c := local.cmds("exec"); len(c) != 1 || !strings.HasPrefix(c[0], "SGERUN_FENCE_HOST='m;rm' SGERUN_FENCE_ADDRESS='$(x)' ;") {
		t.Errorf("fence_command environment not quoted: %q", c)
	}
}

// A fence that turned an autostart off but could not record it shows the
// script's warning with its result: the takeback will not turn it on.
func TestFenceShowsTheScriptsWarnings(t *testing.T) {
	m := newFake(t, "m").on("pgrep -x sge_qmaster", target.Output{Stdout: "qmaster pids: 42; shadowd pids: none\n" +
		WarningPrefix + "autostart gridengine-master turned off on m, but not recorded in /var/lib/sgerun/fenced-autostart: turn it on again by hand after a takeback\n" +
		"autostart disabled: gridengine-master\nfenced: no sge_qmaster or sge_shadowd runs on m\n"})
	var dials []string
	s := &fenceSpec{Master: "m", Timeout: time.Second}
	res, err := s.Do(context.Background(), newFake(t, "controller"), fenceEnv(map[string]target.Target{"m@": m}, &dials))
	if err != nil {
		t.Fatal(err)
	}
	if res.Data["method"] != FenceSSH || !strings.Contains(res.Warning, "autostart gridengine-master turned off on m, but not recorded") {
		t.Errorf("method %v, warning %q: want the fence done over SSH and the warning shown", res.Data["method"], res.Warning)
	}
}

func TestFenceNoWay(t *testing.T) {
	// Nothing can fence: no connections, no fence address, no command.
	local := newFake(t, "controller")
	s := &fenceSpec{Master: "m", Timeout: time.Second}
	_, err := s.Do(context.Background(), local, Runtime{})
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "no fence_address") || !strings.Contains(err.Error(), "no fence_command") {
		t.Fatalf("err = %v, want a refusal naming what is missing", err)
	}
	if len(local.calls) != 0 {
		t.Errorf("ran %v", local.calls)
	}
	s.Unfenced = true
	res, err := s.Do(context.Background(), local, Runtime{})
	if err != nil || res.Data["method"] != FenceUnfenced || res.Data["allowed"] != "allowed by --unfenced or policy.allow_unfenced" {
		t.Errorf("unfenced allowed: %v %v", err, res.Data)
	}
	s.Unfenced = false
	_, err = s.Do(context.Background(), local, Runtime{Confirm: func(context.Context, string, string) (bool, error) {
		return false, errors.New("stdin closed")
	}})
	if err == nil || errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "stdin closed") {
		t.Errorf("prompt failure: %v", err)
	}
}

func TestFencePending(t *testing.T) {
	const pending = "/spool/.sgerun-pending-fence.json"
	first := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	old, _ := json.Marshal(PendingFence{Time: first, RunID: "r0", Master: "m", Reason: "earlier"})
	shadow := newFake(t, "s").put(pending, string(old), target.File{Mode: 0o600, UID: 3, GID: 3})
	local := newFake(t, "controller")
	var dials []string
	s := &fenceSpec{Master: "m", Address: "10.1.0.1", RunID: "r1", Pending: pending, PendingHost: "s", Timeout: time.Second}
	env := fenceEnv(map[string]target.Target{"s@": shadow}, &dials)
	res, err := s.Do(context.Background(), local, env)
	if err != nil || res.Data["method"] != FencePendingSaved {
		t.Fatalf("err %v method %v", err, res.Data["method"])
	}
	var rec PendingFence
	f := shadow.files[pending]
	if err := json.Unmarshal(f.Data, &rec); err != nil {
		t.Fatal(err)
	}
	if !rec.Time.Equal(first) || rec.RunID != "r0" || rec.LastAttempt.IsZero() || !strings.Contains(rec.Reason, "no route to host") {
		t.Errorf("a retry must keep the first time and run and add the attempt: %+v", rec)
	}
	if f.Mode != 0o644 || !strings.HasSuffix(string(f.Data), "\n") {
		t.Errorf("record file %v %q", f.Mode, f.Data)
	}

	s.PendingHost = ""
	if _, err := s.Do(context.Background(), local, env); err == nil || !strings.Contains(err.Error(), "nowhere to record it") {
		t.Errorf("no pending host: %v", err)
	}
	for _, bad := range []string{"{}", "{master: m, timeout: 0s}", "{master: m, bogus: 1}"} {
		if _, err := newSpecErr("sge_fence", bad); err == nil {
			t.Errorf("sge_fence %s accepted", bad)
		}
	}
}
