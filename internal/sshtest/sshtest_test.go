package sshtest

import (
	"bufio"
	"os"
	"path/filepath"
	"testing"
)

// TestManyHosts checks that a thousand virtual hosts start cheaply, each
// with its own port and key.
func TestManyHosts(t *testing.T) {
	s := New(t, Options{Hosts: 1000})
	ports := map[int]bool{}
	keys := map[string]bool{}
	for _, h := range s.Hosts() {
		ports[h.Port] = true
		keys[string(h.HostKey.Marshal())] = true
	}
	if len(ports) != 1000 || len(keys) != 1000 {
		t.Fatalf("%d distinct ports, %d distinct keys, want 1000 each", len(ports), len(keys))
	}
	if s.Host("host999") == nil || s.Host("host1000") != nil {
		t.Errorf("host names are not host0..host999")
	}
	path := filepath.Join(t.TempDir(), "known_hosts")
	if err := s.WriteKnownHosts(path); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lines := 0
	for sc := bufio.NewScanner(f); sc.Scan(); {
		lines++
	}
	if lines != 1000 {
		t.Errorf("known_hosts has %d lines, want 1000", lines)
	}
}
