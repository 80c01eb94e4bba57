package steps

import (
	"context"
	"fmt"
	"strings"

	"github.com/sgerun/sgerun/sge"
	"github.com/sgerun/sgerun/shell"
	"github.com/sgerun/sgerun/target"
	"go.yaml.in/yaml/v3"
)

// The autostart of a fenced master. The fence turns off every boot-time
// start of sge_qmaster and sge_shadowd that is on (systemd units of
// Debian's gridengine-master, upstream's sgemaster and sgemaster.<cluster>,
// sge_shadowd; SysV links through update-rc.d or chkconfig) and notes each
// one in its record on that host (sge.AutostartRecordSh). The takeback turns exactly
// those on again: not an autostart the site had off before the takeover.

// autostartRecorder defines off HOW NAME, which adds a line to the record
// (temp file and rename: a fence killed half-way leaves the old record or
// the new one) and says what was turned off; a record it cannot write is a
// warning, never a failed fence.
func autostartRecorder() string {
	return `rec=` + sge.AutostartRecordSh + `
off() {
  if ! { mkdir -p -m 0700 "${rec%/*}" && { cat "$rec" 2>/dev/null; echo "$1 $2"; } | sort -u > "$rec.tmp.$$" && mv -f "$rec.tmp.$$" "$rec"; }; then
    rm -f "$rec.tmp.$$"
    echo "sgerun-warning: autostart $2 turned off on $(hostname), but not recorded in $rec: turn it on again by hand after a takeback"
  fi
  echo "autostart disabled: $2"
}`
}

// autostartOffScript is the fence script's part that turns the autostart
// off where it is on, and records each one (autostartRecorder).
func autostartOffScript() string {
	return autostartRecorder() + `
# a wedged systemd must not hold the fence up: each call is bounded
sc() { if command -v timeout >/dev/null 2>&1; then timeout 5 systemctl "$@"; else systemctl "$@"; fi; }
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  for u in $(sc list-unit-files --no-legend 'gridengine-master*' 'sgemaster*' 'sge_qmaster*' 'sge_shadowd*' 2>/dev/null | awk '{print $1}'); do
    sc is-enabled --quiet "$u" 2>/dev/null || continue
    sc disable "$u" >/dev/null 2>&1 && off systemd "$u"
  done
fi
for f in /etc/init.d/sgemaster* /etc/init.d/gridengine-master; do
  [ -e "$f" ] || continue
  n=$(basename "$f")
  if command -v update-rc.d >/dev/null 2>&1; then
    ls /etc/rc[2-5].d/S[0-9][0-9]"$n" >/dev/null 2>&1 || continue
    update-rc.d -f "$n" disable >/dev/null 2>&1 && off sysv "$n"
  elif command -v chkconfig >/dev/null 2>&1; then
    chkconfig "$n" 2>/dev/null || continue
    chkconfig "$n" off && off chkconfig "$n"
  fi
done`
}

// autostartEntry is one line of the record.
type autostartEntry struct{ how, name string }

// parseAutostartRecord reads the record; lines it does not understand are
// returned apart, to be named rather than run.
func parseAutostartRecord(data []byte) (entries []autostartEntry, bad []string) {
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
		case len(f) == 2 && (f[0] == "systemd" || f[0] == "sysv" || f[0] == "chkconfig") && !strings.HasPrefix(f[1], "-"):
			entries = append(entries, autostartEntry{f[0], f[1]})
		default:
			bad = append(bad, strings.TrimSpace(line))
		}
	}
	return entries, bad
}

// enableCommand turns one recorded autostart on again.
func (e autostartEntry) enableCommand() string {
	n := shell.Quote(e.name)
	switch e.how {
	case "systemd":
		return "systemctl enable " + n + " >/dev/null"
	case "sysv":
		return "update-rc.d -f " + n + " enable >/dev/null"
	default:
		return "chkconfig " + n + " on"
	}
}

// sgeRestoreAutostartSpec turns on again, on the host it runs on, the
// autostart that a fence of that host turned off (its record,
// sge.AutostartRecordSh), then removes the record. One that cannot be
// turned on is a warning, and the record keeps it. Without a record there
// is nothing to do: the host was fenced by fence_command or by hand, or
// had no autostart on.
type sgeRestoreAutostartSpec struct{}

func (s *sgeRestoreAutostartSpec) Mutates() bool { return true }

// readAutostartRecord prints the record's path on its first line, then
// the record, if there is one.
const readAutostartRecord = `rec=` + sge.AutostartRecordSh + `; printf '%s\n' "$rec"; if [ -r "$rec" ]; then cat -- "$rec"; fi`

func (s *sgeRestoreAutostartSpec) Do(ctx context.Context, t target.Target, _ Runtime) (Result, error) {
	res := Result{Data: map[string]any{"enabled": []string{}}}
	q, err := t.Query(ctx, readAutostartRecord, nil)
	res.Output = q
	if err != nil {
		return res, err
	}
	path, record, _ := strings.Cut(q.Stdout, "\n")
	if q.ExitCode != 0 || !strings.HasPrefix(path, "/") {
		return res, fmt.Errorf("read the autostart record on %s: exit status %d%s", t.Name(), q.ExitCode, lastLine(q.Stderr))
	}
	entries, bad := parseAutostartRecord([]byte(record))
	var ws []string
	for _, b := range bad {
		ws = append(ws, fmt.Sprintf("%s on %s: line %q is not an autostart sgerun recorded; left alone", path, t.Name(), b))
	}
	if len(entries) == 0 {
		res.Stdout = fmt.Sprintf("no autostart recorded in %s on %s: a fence turned none off here; nothing to turn on\n", path, t.Name())
		res.Warning = strings.Join(ws, "\n")
		return res, nil
	}
	var b strings.Builder
	b.WriteString("fail=\n")
	for _, e := range entries {
		fmt.Fprintf(&b, "if %s; then echo %s; else fail=1; echo %s; fi\n", e.enableCommand(),
			shell.Quote("autostart enabled: "+e.name), shell.Quote(WarningPrefix+"autostart "+e.name+" could not be turned on again on "+t.Name()+"; "+path+" keeps it"))
	}
	if len(bad) == 0 {
		b.WriteString(`[ -n "$fail" ] || rm -f -- ` + shell.Quote(path) + "\n")
	}
	b.WriteString("true\n")
	out, err := runScript(ctx, t, b.String(), nil)
	res.Output, res.Changed = out.Output, true
	if w := out.Warning; w != "" {
		ws = append(ws, w)
	}
	res.Warning = strings.Join(ws, "\n")
	var on []string
	for _, line := range strings.Split(out.Stdout, "\n") {
		if n, ok := strings.CutPrefix(line, "autostart enabled: "); ok {
			on = append(on, n)
		}
	}
	res.Data["enabled"] = nonNil(on)
	return res, err
}

func sgeRestoreAutostartKind() Kind {
	return Kind{
		Name: "sge_restore_autostart",
		Doc: "turn on again the qmaster and shadowd autostart that a fence of this host turned off, as the fence recorded it in " +
			"sgerun's state directory there, and nothing else; then remove the record",
		DataKeys: []string{"enabled"},
		New: func(n *yaml.Node) (Spec, error) {
			s := &sgeRestoreAutostartSpec{}
			if err := decodeStrict(n, s); err != nil {
				return nil, err
			}
			return s, nil
		},
	}
}
