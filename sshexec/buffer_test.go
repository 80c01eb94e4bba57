package sshexec

import (
	"strings"
	"sync"
	"testing"
)

func TestCappedBuffer(t *testing.T) {
	tests := []struct {
		max       int
		writes    []string
		want      string
		total     int64
		truncated bool
	}{
		{max: 10, writes: []string{"hello"}, want: "hello", total: 5},
		{max: 5, writes: []string{"hello"}, want: "hello", total: 5},
		{max: 4, writes: []string{"hel", "lo", "!"}, want: "hell", total: 6, truncated: true},
		{max: 0, writes: []string{"abc"}, want: "", total: 3, truncated: true},
		{max: 3, writes: nil, want: "", total: 0},
	}
	for _, tt := range tests {
		b := NewCappedBuffer(tt.max)
		for _, w := range tt.writes {
			if n, err := b.Write([]byte(w)); n != len(w) || err != nil {
				t.Errorf("Write(%q) = %d, %v", w, n, err)
			}
		}
		if b.String() != tt.want || b.Total() != tt.total || b.Truncated() != tt.truncated {
			t.Errorf("max %d writes %q: got %q total %d truncated %v; want %q %d %v",
				tt.max, tt.writes, b.String(), b.Total(), b.Truncated(), tt.want, tt.total, tt.truncated)
		}
	}
}

func TestCappedBufferConcurrent(t *testing.T) {
	b := &CappedBuffer{Max: 1000}
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				_, _ = b.Write([]byte("ab"))
			}
		}()
	}
	wg.Wait()
	if b.Total() != 4000 || len(b.String()) != 1000 || !b.Truncated() {
		t.Errorf("total %d kept %d truncated %v", b.Total(), len(b.String()), b.Truncated())
	}
	if strings.Trim(b.String(), "ab") != "" || strings.Count(b.String(), "ab") != 500 {
		t.Errorf("interleaved writes: %q", b.String())
	}
}

func TestTailBuffer(t *testing.T) {
	b := &tailBuffer{max: 5}
	for _, w := range []string{"abc", "defg", "hi"} {
		_, _ = b.Write([]byte(w))
	}
	if b.String() != "efghi" {
		t.Errorf("tail = %q, want efghi", b.String())
	}
	_, _ = b.Write([]byte("0123456789"))
	if b.String() != "56789" {
		t.Errorf("tail = %q, want 56789", b.String())
	}
}
