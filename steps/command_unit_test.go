package steps

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/sgerun/sgerun/target"
)

// run, script and local: which Target call carries the command, what counts
// as success, what the result says.
func TestCommandKinds(t *testing.T) {
	errLost := errors.New("ssh: connection lost")
	tests := []struct {
		name, kind, params string
		reply              target.Output
		replyErr           error
		op                 string // the call that must carry the command
		cmd                string // the command it must carry
		stdin              string
		changed            bool
		err                string // substring of the error; "" none
		warning            string
	}{
		{name: "run mutates through Exec", kind: "run", params: "touch /x", op: "exec", cmd: "touch /x", changed: true},
		{name: "readonly run queries", kind: "run", params: "{cmd: cat /x, readonly: true}", op: "query", cmd: "cat /x"},
		{name: "local is a run on the controller", kind: "local", params: "{cmd: ipmitool power off}", op: "exec", cmd: "ipmitool power off", changed: true},
		{name: "non-zero exit fails with stderr's last line", kind: "run", params: "false", reply: target.Output{ExitCode: 2, Stderr: "a\nno such file\n"},
			op: "exec", cmd: "false", changed: true, err: "exit status 2: no such file"},
		{name: "ok_codes", kind: "run", params: "{cmd: grep x /f, ok_codes: [0, 1]}", reply: target.Output{ExitCode: 1}, op: "exec", cmd: "grep x /f", changed: true},
		{name: "exit 0 outside ok_codes fails", kind: "run", params: "{cmd: grep x /f, ok_codes: [1]}", op: "exec", cmd: "grep x /f", changed: true, err: "exit status 0"},
		{name: "transport error", kind: "run", params: "true", replyErr: errLost, op: "exec", cmd: "true", changed: true, err: "connection lost"},
		{name: "warning lines reach the result", kind: "run", params: "check", reply: target.Output{Stdout: "ok\n  sgerun-warning: disk 95% full\nsgerun-warning: no shadow\n"},
			op: "exec", cmd: "check", changed: true, warning: "disk 95% full\nno shadow"},
		{name: "script goes over stdin to sh -s", kind: "script", params: "{cmd: \"a\\nb\\n\"}", op: "exec", cmd: "sh -s", stdin: "a\nb\n", changed: true},
		{name: "script with its own shell, readonly", kind: "script", params: "{cmd: echo, shell: bash -s, readonly: true}", op: "query", cmd: "bash -s", stdin: "echo"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, "h")
			if tt.replyErr != nil {
				f.onErr(tt.cmd, tt.replyErr)
			} else {
				f.on(tt.cmd, tt.reply)
			}
			s := kindSpec(t, tt.kind, tt.params)
			if s.Mutates() != tt.changed {
				t.Errorf("Mutates = %v, want %v", s.Mutates(), tt.changed)
			}
			res, err := s.Do(context.Background(), f, Runtime{})
			if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Fatalf("err = %v, want %q", err, tt.err)
			}
			if len(f.calls) != 1 || f.calls[0].op != tt.op || f.calls[0].cmd != tt.cmd || string(f.calls[0].stdin) != tt.stdin {
				t.Fatalf("calls %+v, want one %s of %q with stdin %q", f.calls, tt.op, tt.cmd, tt.stdin)
			}
			if res.Changed != tt.changed || res.Warning != tt.warning || res.ExitCode != tt.reply.ExitCode {
				t.Errorf("result changed %v warning %q exit %d", res.Changed, res.Warning, res.ExitCode)
			}
			if tt.kind == "script" && !strings.Contains(res.Cmd, "<<script\n"+tt.stdin) {
				t.Errorf("script result cmd %q does not show the script", res.Cmd)
			}
		})
	}
}

func TestCommandKindParams(t *testing.T) {
	for _, bad := range []string{`""`, "{cmd: '  '}", "{cmd: x, bogus: 1}", "{cmd: x, ok_codes: nope}"} {
		for _, kind := range []string{"run", "script", "local"} {
			if _, err := newSpecErr(kind, bad); err == nil {
				t.Errorf("%s %s accepted", kind, bad)
			}
		}
	}
	if !Kinds()["local"].Local || Kinds()["run"].Local {
		t.Error("local must run on the controller, run on the hosts")
	}
}
