package steps

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"github.com/sgerun/sgerun/shell"
	"github.com/sgerun/sgerun/target"
	"go.yaml.in/yaml/v3"
)

// putSpec writes a whole file.
type putSpec struct {
	Path    string `yaml:"path"`
	Content string `yaml:"content"`
	// Mode is octal, e.g. "0644"; default: keep the existing file's mode,
	// or 0644 for a new file.
	Mode string `yaml:"mode"`
	// Owner and Group are names or numbers; default: keep the existing
	// file's, or the connecting user's for a new file.
	Owner string `yaml:"owner"`
	Group string `yaml:"group"`
}

func (s *putSpec) Mutates() bool { return true }

func (s *putSpec) Do(ctx context.Context, t target.Target, env Runtime) (Result, error) {
	old, err := t.ReadFile(ctx, s.Path)
	if err != nil {
		return Result{}, fmt.Errorf("read %s: %w", s.Path, err)
	}
	want := target.File{Data: []byte(s.Content), Mode: 0o644, UID: -1, GID: -1, Exists: true}
	if old.Exists {
		want.Mode, want.UID, want.GID = old.Mode, old.UID, old.GID
	}
	if s.Mode != "" {
		m, err := parseMode(s.Mode)
		if err != nil {
			return Result{}, err
		}
		want.Mode = m
	}
	if want.UID, err = lookupID(ctx, t, s.Owner, "user", want.UID); err != nil {
		return Result{}, err
	}
	if want.GID, err = lookupID(ctx, t, s.Group, "group", want.GID); err != nil {
		return Result{}, err
	}
	return writeWithUndo(ctx, t, env, s.Path, old, want)
}

// writeWithUndo writes want over old and returns the undo that restores old.
func writeWithUndo(ctx context.Context, t target.Target, env Runtime, p string, old, want target.File) (Result, error) {
	res := Result{Data: map[string]any{"path": p, "existed": old.Exists}}
	if old.Exists && bytes.Equal(old.Data, want.Data) && old.Mode.Perm() == want.Mode.Perm() &&
		(want.UID < 0 || want.UID == old.UID) && (want.GID < 0 || want.GID == old.GID) {
		return res, nil
	}
	undo := restoreRecord(p, old)
	if err := env.prepare(undo); err != nil {
		return res, err
	}
	if err := t.WriteFile(ctx, p, want); err != nil {
		return res, fmt.Errorf("write %s: %w", p, err)
	}
	res.Changed = true
	res.Undo = undo
	return res, nil
}

func restoreRecord(p string, old target.File) *target.UndoRecord {
	return &target.UndoRecord{Kind: "restore_file", Params: map[string]any{
		"path":    p,
		"existed": old.Exists,
		"data":    base64.StdEncoding.EncodeToString(old.Data),
		"mode":    fmt.Sprintf("%#o", uint32(old.Mode.Perm())),
		"uid":     old.UID,
		"gid":     old.GID,
	}}
}

func parseMode(s string) (fs.FileMode, error) {
	m, err := strconv.ParseUint(strings.TrimPrefix(s, "0o"), 8, 32)
	if err != nil || m > 0o7777 {
		return 0, fmt.Errorf("mode %q is not an octal permission like 0644", s)
	}
	return fs.FileMode(m), nil
}

// lookupID turns a user or group name into its number on the target.
func lookupID(ctx context.Context, t target.Target, name, what string, def int) (int, error) {
	if name == "" {
		return def, nil
	}
	if n, err := strconv.Atoi(name); err == nil && n >= 0 {
		return n, nil
	}
	cmd := "id -u -- " + shell.Quote(name)
	if what == "group" {
		cmd = "getent group -- " + shell.Quote(name) + " | cut -d: -f3"
	}
	out, err := t.Query(ctx, cmd, nil)
	if err != nil {
		return 0, fmt.Errorf("look up %s %s: %w", what, name, err)
	}
	n, perr := strconv.Atoi(strings.TrimSpace(out.Stdout))
	if out.ExitCode != 0 || perr != nil {
		return 0, fmt.Errorf("unknown %s %q on %s", what, name, t.Name())
	}
	return n, nil
}

func checkAbs(node *yaml.Node, key, p string) error {
	if err := require(node, key, p); err != nil {
		return err
	}
	if !path.IsAbs(p) || strings.ContainsAny(p, "\x00\n") {
		return posErr(node, "%s %q must be an absolute path", key, p)
	}
	return nil
}

func putKind() Kind {
	return Kind{
		Name:     "put",
		Doc:      "write a file atomically over SFTP, keeping mode and owner; undo restores the previous bytes",
		DataKeys: []string{"path", "existed"},
		New: func(n *yaml.Node) (Spec, error) {
			s := &putSpec{}
			if err := decodeStrict(n, s); err != nil {
				return nil, err
			}
			if err := checkAbs(n, "path", s.Path); err != nil {
				return nil, err
			}
			if s.Mode != "" {
				if _, err := parseMode(s.Mode); err != nil {
					return nil, posErr(n, "%v", err)
				}
			}
			return s, nil
		},
	}
}

// editKVSpec sets keys in a "key<spaces>value" file.
type editKVSpec struct {
	Path string            `yaml:"path"`
	Set  map[string]string `yaml:"set"`
	// Append missing keys at the end (default false: a missing key is an
	// error, because a typo should not add a line SGE ignores).
	Append bool `yaml:"append"`
}

func (s *editKVSpec) Mutates() bool { return true }

func (s *editKVSpec) Do(ctx context.Context, t target.Target, env Runtime) (Result, error) {
	old, err := t.ReadFile(ctx, s.Path)
	if err != nil {
		return Result{}, fmt.Errorf("read %s: %w", s.Path, err)
	}
	if !old.Exists {
		return Result{}, fmt.Errorf("%s does not exist on %s", s.Path, t.Name())
	}
	data, prev, err := EditKV(old.Data, s.Set, s.Append)
	if err != nil {
		return Result{}, fmt.Errorf("edit %s: %w", s.Path, err)
	}
	want := old
	want.Data = data
	res, err := writeWithUndo(ctx, t, env, s.Path, old, want)
	res.Data["old"] = toAny(prev)
	res.Data["new"] = toAny(s.Set)
	return res, err
}

func toAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// EditKV sets keys in a file of "key<whitespace>value" lines. Comment lines
// (starting with '#'), other keys, the whitespace between a key and its value
// and line endings are kept byte for byte. It returns the new content and the
// previous value of each key that was present. With appendMissing false, a
// key that is not in the file is an error.
func EditKV(data []byte, set map[string]string, appendMissing bool) ([]byte, map[string]string, error) {
	for k, v := range set {
		if k == "" || strings.ContainsAny(k, " \t\r\n#") {
			return nil, nil, fmt.Errorf("bad key %q", k)
		}
		if strings.ContainsAny(v, "\r\n") {
			return nil, nil, fmt.Errorf("value of %s holds a newline", k)
		}
	}
	prev := map[string]string{}
	var out bytes.Buffer
	rest := data
	for len(rest) > 0 {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i+1], rest[i+1:]
		} else {
			rest = nil
		}
		out.Write(editLine(line, set, prev))
	}
	var missing []string
	for k := range set {
		if _, ok := prev[k]; !ok {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 && !appendMissing {
		return nil, nil, fmt.Errorf("key(s) %s not found", strings.Join(sortedCopy(missing), ", "))
	}
	if len(missing) > 0 && out.Len() > 0 && !bytes.HasSuffix(out.Bytes(), []byte("\n")) {
		out.WriteByte('\n')
	}
	for _, k := range sortedCopy(missing) {
		fmt.Fprintf(&out, "%s %s\n", k, set[k])
	}
	return out.Bytes(), prev, nil
}

func editLine(line []byte, set map[string]string, prev map[string]string) []byte {
	body := line
	end := []byte(nil)
	if bytes.HasSuffix(body, []byte("\r\n")) {
		body, end = body[:len(body)-2], []byte("\r\n")
	} else if bytes.HasSuffix(body, []byte("\n")) {
		body, end = body[:len(body)-1], []byte("\n")
	}
	if len(body) == 0 || body[0] == '#' || body[0] == ' ' || body[0] == '\t' {
		return line
	}
	keyEnd := bytes.IndexAny(body, " \t")
	if keyEnd < 0 {
		keyEnd = len(body)
	}
	key := string(body[:keyEnd])
	val, ok := set[key]
	if !ok {
		return line
	}
	sepEnd := keyEnd
	for sepEnd < len(body) && (body[sepEnd] == ' ' || body[sepEnd] == '\t') {
		sepEnd++
	}
	if _, seen := prev[key]; !seen {
		prev[key] = string(body[sepEnd:])
	}
	sep := body[keyEnd:sepEnd]
	if len(sep) == 0 {
		sep = []byte(" ")
	}
	var b bytes.Buffer
	b.Write(body[:keyEnd])
	b.Write(sep)
	b.WriteString(val)
	b.Write(end)
	return b.Bytes()
}

func editKVKind() Kind {
	return Kind{
		Name:     "edit_kv",
		Doc:      "set keys in a key<spaces>value file (SGE bootstrap); every other byte kept; atomic; undo restores the previous bytes",
		DataKeys: []string{"path", "existed", "old", "new"},
		New: func(n *yaml.Node) (Spec, error) {
			s := &editKVSpec{}
			if err := decodeStrict(n, s); err != nil {
				return nil, err
			}
			if err := checkAbs(n, "path", s.Path); err != nil {
				return nil, err
			}
			if len(s.Set) == 0 {
				return nil, posErr(n, "%q needs at least one key", "set")
			}
			if _, _, err := EditKV(nil, s.Set, true); err != nil {
				return nil, posErr(n, "%v", err)
			}
			return s, nil
		},
	}
}

// restoreFileSpec puts back a file's previous bytes, mode and owner, or
// removes a file that did not exist before.
type restoreFileSpec struct {
	Path    string `yaml:"path"`
	Existed bool   `yaml:"existed"`
	Data    string `yaml:"data"`
	Mode    string `yaml:"mode"`
	UID     int    `yaml:"uid"`
	GID     int    `yaml:"gid"`
}

func (s *restoreFileSpec) Mutates() bool { return true }

func (s *restoreFileSpec) Do(ctx context.Context, t target.Target, _ Runtime) (Result, error) {
	if !s.Existed {
		out, err := t.Exec(ctx, "rm -f -- "+shell.Quote(s.Path), nil)
		if err == nil && out.ExitCode != 0 {
			err = fmt.Errorf("remove %s: exit status %d%s", s.Path, out.ExitCode, lastLine(out.Stderr))
		}
		return Result{Output: out, Changed: true}, err
	}
	data, err := base64.StdEncoding.DecodeString(s.Data)
	if err != nil {
		return Result{}, fmt.Errorf("undo data for %s: %w", s.Path, err)
	}
	mode, err := parseMode(s.Mode)
	if err != nil {
		return Result{}, err
	}
	f := target.File{Data: data, Mode: mode, UID: s.UID, GID: s.GID, Exists: true}
	if err := t.WriteFile(ctx, s.Path, f); err != nil {
		return Result{}, fmt.Errorf("restore %s: %w", s.Path, err)
	}
	return Result{Changed: true}, nil
}

func restoreFileKind() Kind {
	return Kind{
		Name:     "restore_file",
		Doc:      "undo of put and edit_kv: restore a file's previous bytes, mode and owner",
		UndoOnly: true,
		New: func(n *yaml.Node) (Spec, error) {
			s := &restoreFileSpec{}
			if err := decodeStrict(n, s); err != nil {
				return nil, err
			}
			return s, checkAbs(n, "path", s.Path)
		},
	}
}
