package steps

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sgerun/sgerun/target"
)

func TestWait(t *testing.T) {
	tests := []struct {
		name, params string
		replies      []target.Output // one per attempt; the last repeats
		attempts     int             // -1: at least two, as the clock allows
		match        string
		err          string
	}{
		{name: "first attempt", params: "{cmd: qping, interval: 1ms, deadline: 1s}", replies: []target.Output{{}}, attempts: 1},
		{name: "until exit 0", params: "{cmd: qping, interval: 1ms, deadline: 1s}",
			replies: []target.Output{{ExitCode: 1}, {ExitCode: 1}, {}}, attempts: 3},
		{name: "until stdout matches, capture", params: "{cmd: qping, match: 'status: +(\\d+)', interval: 1ms, deadline: 1s}",
			replies: []target.Output{{Stdout: "error"}, {Stdout: "status:   0\n"}}, attempts: 2, match: "0"},
		{name: "deadline", params: "{cmd: qping, interval: 20ms, deadline: 50ms}",
			replies: []target.Output{{ExitCode: 1, Stderr: "endpoint not reachable"}}, attempts: -1, err: "condition not met after "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := 0
			f := newFake(t, "h").onDo("qping", func(_ *fakeTarget, _ string) target.Output {
				o := tt.replies[min(n, len(tt.replies)-1)]
				n++
				return o
			})
			s := kindSpec(t, "wait", tt.params)
			if s.Mutates() {
				t.Error("wait mutates")
			}
			res, err := s.Do(context.Background(), f, Runtime{})
			if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Fatalf("err = %v, want %q", err, tt.err)
			}
			if tt.err != "" && !strings.Contains(err.Error(), "endpoint not reachable") {
				t.Errorf("deadline error %q lacks the last output", err)
			}
			q := len(f.cmds("query"))
			if tt.attempts < 0 && q >= 2 {
				tt.attempts = q
			}
			if q != tt.attempts || res.Data["attempts"] != tt.attempts || res.Data["match"] != tt.match {
				t.Errorf("queries %d, data %v; want %d attempts, match %q", len(f.cmds("query")), res.Data, tt.attempts, tt.match)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := newFake(t, "h").onDo("x", func(*fakeTarget, string) target.Output { cancel(); return target.Output{ExitCode: 1} })
	if _, err := kindSpec(t, "wait", "{cmd: x, interval: 1h, deadline: 2h}").Do(ctx, f, Runtime{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled wait: %v", err)
	}
	for _, bad := range []string{"{}", "{cmd: x, interval: 0s}", "{cmd: x, deadline: -1s}", "{cmd: x, match: '('}"} {
		if _, err := newSpecErr("wait", bad); err == nil {
			t.Errorf("wait %s accepted", bad)
		}
	}
}

func TestProbe(t *testing.T) {
	errCut := errors.New("dial: no route to host")
	tests := []struct {
		name, params string
		replies      map[string]target.Output
		reach        map[string]error // nil map: no Reach
		data         map[string]any
		err          string
	}{
		{name: "tcp from the host", params: "{tcp: 'm:6444', timeout: 2s}",
			replies: map[string]target.Output{"timeout 2 bash -c 'exec 3<>/dev/tcp/\"$0\"/\"$1\"' m 6444": {}},
			data:    map[string]any{"ok": true, "tcp": true}},
		{name: "tcp refused", params: "{tcp: 'm:6444'}", replies: map[string]target.Output{"/dev/tcp": {ExitCode: 1}},
			data: map[string]any{"ok": false, "tcp": false}, err: "connect m:6444 from h failed (exit 1)"},
		{name: "ssh from the controller", params: "{ssh: m}", reach: map[string]error{"m": nil}, data: map[string]any{"ok": true, "ssh": true}},
		{name: "ssh down", params: "{ssh: m}", reach: map[string]error{"m": errCut}, data: map[string]any{"ok": false, "ssh": false}, err: "no route to host"},
		{name: "no ssh transport", params: "{ssh: m}", data: map[string]any{"ok": false, "ssh": false}, err: "no SSH transport"},
		{name: "cmd and match", params: "{cmd: qping, match: 'status: (\\d)'}", replies: map[string]target.Output{"qping": {Stdout: "status: 0\n"}},
			data: map[string]any{"ok": true, "cmd": true, "match": "0"}},
		{name: "evidence only: require false", params: "{tcp: 'm:6444', cmd: qping, match: 'status: 0', require: false}",
			replies: map[string]target.Output{"/dev/tcp": {ExitCode: 124}, "qping": {Stdout: "status: 2"}},
			data:    map[string]any{"ok": false, "tcp": false, "cmd": false, "match": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, "h")
			for sub, out := range tt.replies {
				f.on(sub, out)
			}
			env := Runtime{}
			if tt.reach != nil {
				env.Reach = func(_ context.Context, host string) error { return tt.reach[host] }
			}
			res, err := kindSpec(t, "probe", tt.params).Do(context.Background(), f, env)
			if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Fatalf("err = %v, want %q", err, tt.err)
			}
			for k, v := range tt.data {
				if res.Data[k] != v {
					t.Errorf("data[%s] = %v, want %v (%v)", k, res.Data[k], v, res.Data)
				}
			}
			if len(f.cmds("exec")) != 0 || len(f.cmds("query")) != len(tt.replies) {
				t.Errorf("probe calls %+v", f.calls)
			}
		})
	}
	for _, bad := range []string{"{}", "{tcp: m}", "{tcp: ':6444'}", "{tcp: 'm:0'}", "{tcp: 'm:x'}", "{cmd: x, timeout: 0s}", "{cmd: x, match: '['}"} {
		if _, err := newSpecErr("probe", bad); err == nil {
			t.Errorf("probe %s accepted", bad)
		}
	}
}

func TestAssertAndStop(t *testing.T) {
	tests := []struct {
		kind, params string
		is           error // errors.Is; nil: success
		err          string
		data         map[string]any
	}{
		{"assert", "{that: 'true'}", nil, "", map[string]any{"ok": true}},
		{"assert", "{that: ' false ', msg: the shadow is not ready}", ErrRefused, "refused: the shadow is not ready", map[string]any{"ok": false}},
		{"assert", "{that: 'false'}", ErrRefused, "assertion failed", map[string]any{"ok": false}},
		{"assert", "{that: 'yes'}", nil, `rendered "yes"`, nil},
		{"stop", "{if: 'true', msg: already master}", ErrStopRun, "already master", map[string]any{"stopped": true}},
		{"stop", "{if: 'false', msg: already master}", nil, "", map[string]any{"stopped": false}},
		{"stop", "{if: 'maybe', msg: m}", nil, `rendered "maybe"`, nil},
	}
	for _, tt := range tests {
		s, err := newSpecErr(tt.kind, tt.params)
		if err != nil {
			t.Fatalf("%s %s: %v", tt.kind, tt.params, err)
		}
		// Neither needs a target: they read only their rendered condition.
		res, err := s.Do(context.Background(), nil, Runtime{})
		switch {
		case tt.is != nil && !errors.Is(err, tt.is):
			t.Errorf("%s %s: err %v, want %v", tt.kind, tt.params, err, tt.is)
		case tt.err == "" && err != nil, tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%s %s: err %v, want %q", tt.kind, tt.params, err, tt.err)
		}
		for k, v := range tt.data {
			if res.Data[k] != v {
				t.Errorf("%s %s: data %v", tt.kind, tt.params, res.Data)
			}
		}
	}
	for _, bad := range []string{"{msg: x}", "{that: 'true', bogus: 1}"} {
		if _, err := newSpecErr("assert", bad); err == nil {
			t.Errorf("assert %s accepted", bad)
		}
	}
	for _, bad := range []string{"{if: 'true'}", "{if: '', msg: m}", "{msg: m}"} {
		if _, err := newSpecErr("stop", bad); err == nil {
			t.Errorf("stop %s accepted", bad)
		}
	}
}

func TestReachable(t *testing.T) {
	var mu sync.Mutex
	var asked []string
	reach := func(down ...string) func(context.Context, string) error {
		return func(_ context.Context, h string) error {
			mu.Lock()
			asked = append(asked, h)
			mu.Unlock()
			for _, d := range down {
				if h == d {
					return errors.New("ssh dial " + h + ": i/o timeout")
				}
			}
			return nil
		}
	}
	s := kindSpec(t, "reachable", "{hosts: [s, w1, w2], msg: the shadow must be reachable}")
	res, err := s.Do(context.Background(), nil, Runtime{Reach: reach()})
	if err != nil || len(asked) != 3 || len(res.Data["unreachable"].([]string)) != 0 {
		t.Errorf("all up: err %v asked %v data %v", err, asked, res.Data)
	}
	res, err = s.Do(context.Background(), nil, Runtime{Reach: reach("w2", "s")})
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "the shadow must be reachable: s: ssh dial s: i/o timeout; w2: ") {
		t.Errorf("down: err %v", err)
	}
	if u := res.Data["unreachable"].([]string); len(u) != 2 || !strings.HasPrefix(u[0], "s:") || !strings.HasPrefix(u[1], "w2:") {
		t.Errorf("unreachable %v, want s and w2 sorted", u)
	}
	if _, err := s.Do(context.Background(), nil, Runtime{}); err == nil || errors.Is(err, ErrRefused) {
		t.Errorf("no transport: %v, want an error that is no refusal", err)
	}
	slow := kindSpec(t, "reachable", "{hosts: [s], msg: m, timeout: 10ms}")
	_, err = slow.Do(context.Background(), nil, Runtime{Reach: func(ctx context.Context, _ string) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Second):
			return nil
		}
	}})
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "deadline exceeded") {
		t.Errorf("timeout: %v", err)
	}
	for _, bad := range []string{"{msg: m}", "{hosts: [s]}", "{hosts: [s], msg: m, timeout: 0s}"} {
		if _, err := newSpecErr("reachable", bad); err == nil {
			t.Errorf("reachable %s accepted", bad)
		}
	}
}
