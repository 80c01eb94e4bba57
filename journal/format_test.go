package journal

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMetaRecordsFormatAndVersion(t *testing.T) {
	base := t.TempDir()
	meta := Meta{RunID: NewRunID(time.Now()), Runbook: "rb", Started: time.Now().UTC()}
	w, err := Create(base, meta, []byte("name: rb\n"))
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	got, _, err := Read(filepath.Join(base, meta.RunID))
	if err != nil {
		t.Fatal(err)
	}
	if got.Format != FormatVersion || got.SgerunVersion == "" {
		t.Errorf("meta format %d, sgerun_version %q; want %d and the binary's version", got.Format, got.SgerunVersion, FormatVersion)
	}
}

func TestNewerFormatRefused(t *testing.T) {
	base := t.TempDir()
	meta := Meta{RunID: NewRunID(time.Now()), Runbook: "rb", Started: time.Now().UTC()}
	w, err := Create(base, meta, []byte("name: rb\n"))
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	dir := filepath.Join(base, meta.RunID)
	// An older journal (no format recorded) still opens.
	rewriteMeta(t, dir, func(m map[string]any) { delete(m, "format"); delete(m, "sgerun_version") })
	if w, err := Open(dir); err != nil {
		t.Fatalf("open a journal without format: %v", err)
	} else {
		w.Close()
	}
	rewriteMeta(t, dir, func(m map[string]any) { m["format"] = FormatVersion + 1; m["sgerun_version"] = "9.0.0" })
	m, _, err := Read(dir)
	if err != nil {
		t.Fatalf("read stays possible (show, history): %v", err)
	}
	err = CheckFormat(m)
	if !errors.Is(err, ErrFormatTooNew) || !strings.Contains(err.Error(), "9.0.0") {
		t.Errorf("CheckFormat = %v, want ErrFormatTooNew naming the writer's version", err)
	}
	if _, err := Open(dir); !errors.Is(err, ErrFormatTooNew) {
		t.Errorf("Open of a newer format = %v, want ErrFormatTooNew", err)
	}
}

func rewriteMeta(t *testing.T, dir string, edit func(map[string]any)) {
	t.Helper()
	p := filepath.Join(dir, MetaFile)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	if b, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
