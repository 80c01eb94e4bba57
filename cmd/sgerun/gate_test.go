package main

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sgerun/sgerun/inventory"
	"github.com/sgerun/sgerun/steps"
)

// TestWatchGateIsTheTakeoversGate checks that watch probes the gate that
// takeover.yaml's sge_gate step builds from the inventory (there is no
// second mapping): every value an admin sets reaches it, and --var
// force never does.
func TestWatchGateIsTheTakeoversGate(t *testing.T) {
	data, err := os.ReadFile("../../inventory.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	src := string(data)
	for _, r := range [][2]string{
		{"qmaster_port: 6444", "qmaster_port: 7444"},
		{"quorum: 2", "quorum: 1"},
		{"antiflap: 30m", "antiflap: 45m"},
		{"heartbeat_stale: 90s", "heartbeat_stale: 2m"},
	} {
		if !strings.Contains(src, r[0]) {
			t.Fatalf("inventory.example.yaml no longer has %q", r[0])
		}
		src = strings.Replace(src, r[0], r[1], 1)
	}
	inv, err := inventory.Parse("site.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	got, err := gateConfig(inv)
	if err != nil {
		t.Fatal(err)
	}
	c := inv.Cluster
	want := steps.GateConfig{
		Master: inv.Role(inventory.RoleMaster)[0], Shadow: inv.Role(inventory.RoleShadow)[0],
		Witnesses: inv.Role(inventory.RoleWitnesses), SGERoot: c.SGERoot, SGECell: c.SGECell,
		Port: 7444, SharedDir: c.SharedDir, Timeout: steps.DefaultGateTimeout,
		Policy: steps.GatePolicy{Quorum: 1, HeartbeatStale: 2 * time.Minute, Antiflap: 45 * time.Minute},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("watch's gate:\n got %+v\nwant %+v", got, want)
	}
	if len(want.Witnesses) == 0 || want.SharedDir == "" {
		t.Fatalf("the example names no witnesses or shared_dir, so this test checks less than it says: %+v", want)
	}
}
