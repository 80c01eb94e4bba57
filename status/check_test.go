package status

import (
	"strings"
	"testing"
	"time"
)

func TestCheckPerfdataHeartbeat(t *testing.T) {
	base := func(age int) *Report {
		return &Report{Hosts: []Host{{Name: "m", Role: "master", Reachable: true}, {Name: "s", Role: "shadow", Reachable: true}},
			ActQmaster: "m", Serving: []string{"m"}, Running: []string{"m"}, HeartbeatAge: age, ExecTotal: 1, ExecReporting: 1}
	}
	tests := []struct {
		age  int
		want string
	}{
		{-1, "heartbeat_age=U;60;180;0 "},
		{0, "heartbeat_age=0s;60;180;0 "},
		{42, "heartbeat_age=42s;60;180;0 "},
	}
	for _, tt := range tests {
		v := Check(base(tt.age), time.Minute, nil)
		if !strings.HasPrefix(v.Perfdata, tt.want) {
			t.Errorf("age %d: perfdata %q, want it to start with %q", tt.age, v.Perfdata, tt.want)
		}
		if !strings.Contains(v.Line(), "| "+tt.want) {
			t.Errorf("age %d: line %q lacks %q", tt.age, v.Line(), tt.want)
		}
	}
}
