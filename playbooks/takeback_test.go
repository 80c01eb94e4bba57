package playbooks

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/sgerun/sgerun/engine"
	"github.com/sgerun/sgerun/inventory"
	"github.com/sgerun/sgerun/journal"
	"github.com/sgerun/sgerun/plan"
	"github.com/sgerun/sgerun/runbook"
	"github.com/sgerun/sgerun/target"
)

// The takeback playbook run by the real engine against simulated hosts: a
// cell after a takeover from m to s, with common/ either shared by every
// host (one file system) or local to each (Debian's default). Commands are
// answered by matching them, and a command nobody expects fails the test
// (rig's style), so a change to the playbook's commands shows up here.

const tbInventory = `
cluster: {sge_root: /opt/sge, sge_cell: prod, qmaster_port: 7444, execd_port: 7445, shared_dir: /spool, common_shared: %s}
ssh: {user: root, known_hosts: /etc/sgerun/known_hosts}
hosts:
  m: {address: 10.9.0.1}
  s: {address: 10.9.0.2}
  e[1-2]: {}
roles: {master: m, shadow: s, execd: ["e[1-2]"]}
`

const (
	tbCommon   = "/opt/sge/prod/common"
	tbOrigDir  = "/spool/qmaster"
	tbOrigDB   = "/spool/spooldb"
	tbCopyDir  = "/spool/qmaster.sgerun-20261201000000"
	tbCopyDB   = "/spool/spooldb.sgerun-20261201000000"
	tbBootTmpl = "Version: 6.2\nadmin_user sgeadmin\nqmaster_spool_dir %s\nspooling_method berkeleydb\nspooling_params %s\n"
)

// tbFS is one file system: common/ of one host, or the shared one.
type tbFS struct {
	id    int
	files map[string]target.File
	mtime map[string]int
}

// tbCluster is the simulated cell.
type tbCluster struct {
	t       *testing.T
	mu      sync.Mutex
	spool   *tbFS            // the shared spool file system
	common  map[string]*tbFS // common/ as each host sees it
	qmaster map[string]bool  // hosts running sge_qmaster
	down    map[string]bool  // hosts that cannot be reached
	// started is the master's bootstrap when its qmaster started.
	started string
	ticks   int
	copied  map[string]bool     // directories cp -a made
	own     map[string]*tbFS    // each host's own disk (sgerun's host records)
	enabled map[string][]string // autostart turned on, per host
	// failStart makes the master's qmaster fail to start (a rollback).
	failStart bool
}

func newTBCluster(t *testing.T, local bool) *tbCluster {
	c := &tbCluster{t: t, spool: &tbFS{id: 1, files: map[string]target.File{}, mtime: map[string]int{}},
		common: map[string]*tbFS{}, qmaster: map[string]bool{"s": true}, down: map[string]bool{},
		copied: map[string]bool{}, own: map[string]*tbFS{}, enabled: map[string][]string{}}
	shared := &tbFS{id: 2, files: map[string]target.File{}, mtime: map[string]int{}}
	for i, h := range []string{"m", "s", "e1", "e2"} {
		fs := shared
		if local {
			fs = &tbFS{id: 10 + i, files: map[string]target.File{}, mtime: map[string]int{}}
		}
		c.common[h] = fs
	}
	// What a takeover from m to s leaves: the shadow's bootstrap names the
	// copies and act_qmaster names s on every host it wrote. Where common/
	// is local, the master's own files still date from before.
	c.write("s", tbCommon+"/bootstrap", fmt.Sprintf(tbBootTmpl, tbCopyDir, tbCopyDB))
	for _, h := range []string{"s", "e1", "e2"} {
		c.write(h, tbCommon+"/act_qmaster", "s\n")
	}
	if local {
		c.write("m", tbCommon+"/bootstrap", fmt.Sprintf(tbBootTmpl, tbOrigDir, tbOrigDB))
		c.write("m", tbCommon+"/act_qmaster", "m\n")
	}
	return c
}

// fs returns the file system holding path on host.
func (c *tbCluster) fs(host, path string) *tbFS {
	if strings.HasPrefix(path, tbCommon+"/") {
		return c.common[host]
	}
	if strings.HasPrefix(path, "/var/lib/sgerun/") {
		if c.own[host] == nil {
			c.own[host] = &tbFS{id: 100 + len(c.own), files: map[string]target.File{}, mtime: map[string]int{}}
		}
		return c.own[host]
	}
	return c.spool
}

func (c *tbCluster) write(host, path, data string) {
	fs := c.fs(host, path)
	c.ticks++
	fs.files[path] = target.File{Data: []byte(data), Mode: 0o644, Exists: true}
	fs.mtime[path] = c.ticks
}

func (c *tbCluster) read(host, path string) string {
	return string(c.fs(host, path).files[path].Data)
}

// Target connects to a host; a host that is down cannot be reached.
func (c *tbCluster) Target(_ context.Context, host string) (target.Target, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down[host] {
		return nil, fmt.Errorf("ssh dial %s: connection timed out", host)
	}
	return &tbTarget{c: c, host: host}, nil
}

func (c *tbCluster) Local() target.Target { return &tbTarget{c: c, host: "controller"} }

func (c *tbCluster) Reach(ctx context.Context, host string) error {
	_, err := c.Target(ctx, host)
	return err
}

type tbTarget struct {
	c    *tbCluster
	host string
}

func (t *tbTarget) Name() string { return t.host }

func (t *tbTarget) Query(ctx context.Context, cmd string, stdin []byte) (target.Output, error) {
	return t.run(cmd, stdin)
}

func (t *tbTarget) Exec(ctx context.Context, cmd string, stdin []byte) (target.Output, error) {
	return t.run(cmd, stdin)
}

func (t *tbTarget) ReadFile(_ context.Context, path string) (target.File, error) {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	return t.c.fs(t.host, path).files[path], nil
}

func (t *tbTarget) WriteFile(_ context.Context, path string, f target.File) error {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	t.c.write(t.host, path, string(f.Data))
	return nil
}

// tbWord matches one shell word as shell.Quote writes it (quoted only
// when it must be).
const tbWord = `'?([^' ]+)'?`

var (
	tbCat    = regexp.MustCompile(`^cat ` + tbWord + `$`)
	tbStat   = regexp.MustCompile(`^stat -c ["']%i %Y %s["'] ` + tbWord + `$`)
	tbQping  = regexp.MustCompile(`qping -info ` + tbWord + ` '?7444'? qmaster 1$`)
	tbTest   = regexp.MustCompile(`^test -e ` + tbWord + `$`)
	tbLock   = regexp.MustCompile(`^p=` + tbWord + `; t=\$\(mktemp "\$p\.tmp\.XXXXXX"\) \|\| exit 2; printf '%s\\n' '([^']*)' > "\$t" && chmod 0644 "\$t" && ln "\$t" "\$p"; rc=\$\?; rm -f "\$t"; exit \$rc$`)
	tbRemove = regexp.MustCompile(`^rm -f -- ` + tbWord + `$`)
	tbCopyTo = regexp.MustCompile(`^test -e ` + tbWord + ` \|\| test -L `)
	tbCp     = regexp.MustCompile(`^cp -a -- ` + tbWord + ` ` + tbWord + `( && .*)?$`)
	tbCpBDB  = regexp.MustCompile(`^set -e; mkdir -- ` + tbWord + `;`)
	tbFind   = regexp.MustCompile(`^cd ` + tbWord + ` && find \. -mindepth 1 -printf `)
)

// run answers the commands of the takeback playbook.
func (t *tbTarget) run(cmd string, stdin []byte) (target.Output, error) {
	c := t.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(stdin) > 0 {
		cmd = string(stdin) // script kind: the script comes on stdin
	}
	out := target.Output{Cmd: cmd}
	fail := func(msg string) (target.Output, error) {
		out.ExitCode, out.Stderr = 1, msg
		return out, nil
	}
	body := strings.TrimSpace(cmd)
	if i := strings.Index(body, "SGE_CELL="); i >= 0 {
		// sgeenv prefix: drop "SGE_ROOT=... SGE_CELL=... PATH=...; export ..."
		if j := strings.Index(body[i:], " qping "); j >= 0 {
			body = strings.TrimSpace(body[i+j:])
		}
	}
	switch {
	case tbCat.MatchString(body):
		p := tbCat.FindStringSubmatch(body)[1]
		f := c.fs(t.host, p).files[p]
		if !f.Exists {
			return fail("cat: " + p + ": No such file or directory")
		}
		out.Stdout = string(f.Data)
	case tbStat.MatchString(body):
		p := tbStat.FindStringSubmatch(body)[1]
		fs := c.fs(t.host, p)
		f := fs.files[p]
		if !f.Exists {
			return fail("stat: cannot stat")
		}
		out.Stdout = fmt.Sprintf("%d %d %d\n", fs.id*1000, fs.mtime[p], len(f.Data))
	case body == "hostname":
		out.Stdout = t.host + "\n"
	case strings.Contains(cmd, "qconf -sh |"):
		// SGE clients before the master's qmaster is back: on the shadow,
		// whose act_qmaster names the running qmaster
		if t.host != "s" {
			c.t.Errorf("SGE client on %s before the takeback, want on the shadow:\n%s", t.host, cmd)
		}
	case tbQping.MatchString(cmd):
		h := tbQping.FindStringSubmatch(cmd)[1]
		if !c.qmaster[h] {
			return fail("error: commlib error: can't connect to service")
		}
		out.Stdout = "status:        0\n"
	case tbLock.MatchString(body):
		m := tbLock.FindStringSubmatch(body)
		p := m[1]
		if c.spool.files[p].Exists {
			return fail("file exists")
		}
		c.write(t.host, p, m[2]+"\n")
	case tbRemove.MatchString(body):
		p := tbRemove.FindStringSubmatch(body)[1]
		delete(c.fs(t.host, p).files, p)
	case strings.HasSuffix(body, "qconf -km"):
		if t.host != "s" {
			c.t.Errorf("qconf -km on %s, want on the shadow", t.host)
		}
		c.qmaster["s"] = false
		c.write(t.host, tbCopyDir+"/lock", "")
	case strings.Contains(cmd, "pgrep -x sge_qmaster); rc=$?"):
		if c.qmaster[t.host] {
			out.Stdout = "sge_qmaster still runs on " + t.host + ", pid 42\n"
			out.ExitCode = 1
			break
		}
		out.Stdout = "no sge_qmaster process on " + t.host + " (pgrep -x sge_qmaster, /proc/PID/comm)\n"
	case strings.HasPrefix(body, "test -d "):
	case tbCopyTo.MatchString(body):
		p := tbCopyTo.FindStringSubmatch(body)[1]
		if !c.copied[p] {
			out.ExitCode = 1
		}
	case tbCp.MatchString(body):
		c.copied[tbCp.FindStringSubmatch(body)[2]] = true
	case tbCpBDB.MatchString(body):
		c.copied[tbCpBDB.FindStringSubmatch(body)[1]] = true
	case tbFind.MatchString(body):
		out.Stdout = "sge_job\tf\t4096\n"
	case strings.Contains(cmd, `"$recover" -h "$d"`):
		out.Stdout = "db_recover, db_verify: ok\n"
	case strings.Contains(cmd, `"$t" -p -h "$d" "$d/sge_job"`):
		out.Stdout = "1\n2\n"
	case tbTest.MatchString(body):
		p := tbTest.FindStringSubmatch(body)[1]
		if !c.fs(t.host, p).files[p].Exists {
			out.ExitCode = 1
		}
	case strings.Contains(cmd, `"$rc" -qmaster start`):
		switch {
		case t.host == "m" && c.failStart:
			return fail("sge_qmaster: cannot open spool")
		case t.host == "s" && c.failStart:
			// the rollback brings back the shadow's qmaster
		case t.host != "m":
			c.t.Errorf("qmaster started on %s, want on the master", t.host)
		}
		c.qmaster[t.host] = true
		c.started = c.read(t.host, tbCommon+"/bootstrap")
	case strings.Contains(cmd, "mine() {"):
		// the undo of the master's start: this cell's qmaster there
		if c.qmaster[t.host] {
			c.t.Errorf("rollback stops a qmaster on %s", t.host)
		}
		out.Stdout = "no qmaster of this cell runs here\n"
	case strings.HasSuffix(cmd, "qhost"):
		out.Stdout = "HOSTNAME ARCH NCPU NSOC NCOR NTHR LOAD MEMTOT MEMUSE SWAPTO SWAPUS\n" +
			"----------------------------------------------------------------------------------------------\n" +
			"global - - - - - - - - - -\n" +
			"e1 lx-amd64 2 1 2 2 0.01 1.9G 300M 0.0 0.0\n" +
			"e2 lx-amd64 2 1 2 2 0.02 1.9G 300M 0.0 0.0\n"
	case strings.HasSuffix(cmd, "qstat -u '*'"):
		// the job list on the shadow while its qmaster runs, the job
		// check on the master once its own does
		if !c.qmaster[t.host] || t.host != "s" && t.host != "m" {
			c.t.Errorf("qstat on %s (qmasters %v), want on the shadow before the takeback or on the master after it", t.host, c.qmaster)
		}
		out.Stdout = "job-ID prior name user state submit/start at queue slots ja-task-ID\n" +
			"-----------------------------------------------------------------------\n" +
			"1 0.55500 sleep u r 12/01/2026 00:59:00 all.q@e1 1\n" +
			"2 0.55500 sleep u r 12/01/2026 00:59:00 all.q@e2 1\n"
	case strings.Contains(cmd, "${SGERUN_STATE_DIR:-/var/lib/sgerun}/fenced-autostart"):
		// the fence's record on this host, in sgerun's state dir there
		const rec = "/var/lib/sgerun/fenced-autostart"
		out.Stdout = rec + "\n" + string(c.fs(t.host, rec).files[rec].Data)
	case strings.HasPrefix(body, "[ -r "+tbCommon+"/accounting ] || exit 0; awk "):
		if t.host != "s" {
			c.t.Errorf("accounting of the shadow read on %s", t.host)
		}
	case strings.Contains(cmd, "systemctl enable"), strings.Contains(cmd, "update-rc.d"):
		for _, m := range regexp.MustCompile(`echo 'autostart enabled: ([^']+)'`).FindAllStringSubmatch(cmd, -1) {
			c.enabled[t.host] = append(c.enabled[t.host], m[1])
			out.Stdout += "autostart enabled: " + m[1] + "\n"
		}
		if strings.Contains(cmd, "rm -f -- /var/lib/sgerun/fenced-autostart") {
			delete(c.fs(t.host, "/var/lib/sgerun/fenced-autostart").files, "/var/lib/sgerun/fenced-autostart")
		}
	case strings.HasPrefix(body, "echo 'act_qmaster still names"):
		out.Stdout = strings.Trim(strings.TrimPrefix(body, "echo "), "'") + "\n"
	default:
		c.t.Errorf("unexpected command on %s:\n%s", t.host, cmd)
		return fail("unexpected command")
	}
	return out, nil
}

// tbRun runs takeback on c and returns the journal.
func tbRun(t *testing.T, c *tbCluster, commonShared string) ([]journal.Event, error) {
	t.Helper()
	return tbRunVars(t, c, commonShared, false)
}

// tbRunVars is tbRun with --restore-spool or not.
func tbRunVars(t *testing.T, c *tbCluster, commonShared string, restore bool) ([]journal.Event, error) {
	t.Helper()
	inv, err := inventory.Parse("tb.yaml", []byte(fmt.Sprintf(tbInventory, commonShared)))
	if err != nil {
		t.Fatal(err)
	}
	file, data, err := Source("takeback")
	if err != nil {
		t.Fatal(err)
	}
	rb, err := runbook.Parse(file, data)
	if err != nil {
		t.Fatal(err)
	}
	p, err := plan.Compile(rb, inv, map[string]string{"restore_spool": strconv.FormatBool(restore)})
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu     sync.Mutex
		events []journal.Event
	)
	e := &engine.Engine{Inventory: inv, Connector: c,
		Run: plan.Run{ID: "20261201-010000-aaaaaa", Stamp: "20261201010000", Time: "2026-12-01T01:00:00Z"},
		Record: func(ev journal.Event) (journal.Event, error) {
			mu.Lock()
			defer mu.Unlock()
			ev.Seq = len(events) + 1
			events = append(events, ev)
			return ev, nil
		}}
	err = e.Execute(context.Background(), p, engine.NewState())
	return events, err
}

// tbStep returns the step_end or step_skip of the step named name.
func tbStep(t *testing.T, events []journal.Event, name string) journal.Event {
	t.Helper()
	for _, ev := range events {
		if ev.StepName == name && (ev.Type == journal.StepEnd || ev.Type == journal.StepSkip) {
			return ev
		}
	}
	t.Fatalf("no step %q in the journal", name)
	return journal.Event{}
}

// tbHostOutput returns what step name printed on host.
func tbHostOutput(events []journal.Event, name, host string) string {
	for _, ev := range events {
		if ev.StepName == name && ev.Type == journal.HostEnd && ev.Host == host && ev.Output != nil {
			return ev.Output.Stdout
		}
	}
	return ""
}

const (
	tbStepGone      = "stop the qmaster on the shadow (qconf -km)"
	tbStepMasterBS  = "point the master's bootstrap at the spool it will use"
	tbStepExecAct   = "write act_qmaster where common/ is not shared"
	tbStepNameExecs = "name the exec hosts whose act_qmaster was not rewritten"
)

// TestTakebackProvesTheShadowsQmasterGone: the old qmaster's end is shown
// by a process lookup on the shadow, and that is in the journal; no step
// infers it from a failing qping.
func TestTakebackProvesTheShadowsQmasterGone(t *testing.T) {
	c := newTBCluster(t, false)
	events, err := tbRun(t, c, "auto")
	if err != nil {
		t.Fatalf("takeback: %v", err)
	}
	gone := tbStep(t, events, tbStepGone)
	if gone.Status != journal.StatusOK || strings.Join(gone.Hosts, ",") != "s" {
		t.Errorf("%s: %s on %v, want ok on the shadow", tbStepGone, gone.Status, gone.Hosts)
	}
	if out := tbHostOutput(events, tbStepGone, "s"); !strings.Contains(out, "no sge_qmaster process on s") {
		t.Errorf("%s: the journal shows %q, want the process lookup's proof", tbStepGone, out)
	}
	_, data, _ := Source("takeback")
	if regexp.MustCompile(`!\s*qping`).Match(data) {
		t.Errorf("takeback still infers a stopped qmaster from a failing qping")
	}
	if c.qmaster["s"] || !c.qmaster["m"] {
		t.Errorf("qmaster running: %v, want only on m", c.qmaster)
	}
}

// TestTakebackSharedCommon: one common/ for every host. The bootstrap is
// left as the shadow's qmaster had it (no --restore-spool), act_qmaster is
// written once, and the exec hosts' copy is not written again.
func TestTakebackSharedCommon(t *testing.T) {
	c := newTBCluster(t, false)
	events, err := tbRun(t, c, "auto")
	if err != nil {
		t.Fatalf("takeback: %v", err)
	}
	for _, name := range []string{tbStepMasterBS, tbStepExecAct, tbStepNameExecs} {
		if ev := tbStep(t, events, name); ev.Type != journal.StepSkip {
			t.Errorf("%s: %s, want skipped with a shared common/", name, ev.Type)
		}
	}
	if got, want := c.read("m", tbCommon+"/bootstrap"), fmt.Sprintf(tbBootTmpl, tbCopyDir, tbCopyDB); got != want {
		t.Errorf("bootstrap changed:\n%s", got)
	}
	if a := c.read("e1", tbCommon+"/act_qmaster"); a != "m\n" {
		t.Errorf("act_qmaster %q, want m", a)
	}
}

// TestTakebackLocalCommon: common/ local to each host, as Debian installs
// it. The master's own bootstrap still names the spool from before the
// takeover; takeback gives it the spool keys of the bootstrap the shadow's
// qmaster used (every other line kept), before the master's qmaster
// starts, and writes act_qmaster on every exec host. The guess (auto) and
// the inventory's common_shared: no give the same.
func TestTakebackLocalCommon(t *testing.T) {
	for _, shared := range []string{"auto", "no"} {
		t.Run(shared, func(t *testing.T) {
			c := newTBCluster(t, true)
			events, err := tbRun(t, c, shared)
			if err != nil {
				t.Fatalf("takeback: %v", err)
			}
			want := fmt.Sprintf(tbBootTmpl, tbCopyDir, tbCopyDB)
			if c.started != want {
				t.Errorf("the master's qmaster started with bootstrap\n%s\nwant the shadow's spool\n%s", c.started, want)
			}
			if ev := tbStep(t, events, tbStepMasterBS); ev.Type != journal.StepEnd || ev.Status != journal.StatusOK {
				t.Errorf("%s: %s %s, want done", tbStepMasterBS, ev.Type, ev.Status)
			}
			for _, h := range []string{"m", "s", "e1", "e2"} {
				if a := c.read(h, tbCommon+"/act_qmaster"); a != "m\n" {
					t.Errorf("act_qmaster on %s: %q, want m", h, a)
				}
			}
			if ev := tbStep(t, events, tbStepNameExecs); ev.Type != journal.StepSkip {
				t.Errorf("%s: %s, want skipped when every exec host was reached", tbStepNameExecs, ev.Type)
			}
		})
	}
}

// TestTakebackLocalCommonExecHostDown: an exec host that cannot be reached
// does not stop the takeback; the run names it.
func TestTakebackLocalCommonExecHostDown(t *testing.T) {
	c := newTBCluster(t, true)
	c.down["e2"] = true
	events, err := tbRun(t, c, "auto")
	if err != nil {
		t.Fatalf("takeback with e2 down: %v", err)
	}
	if a := c.read("e1", tbCommon+"/act_qmaster"); a != "m\n" {
		t.Errorf("act_qmaster on e1: %q, want m", a)
	}
	ev := tbStep(t, events, tbStepExecAct)
	if ev.Status != journal.StatusTolerated || strings.Join(ev.Failed, ",") != "e2" {
		t.Errorf("%s: %s, failed %v; want tolerated with e2 failed", tbStepExecAct, ev.Status, ev.Failed)
	}
	named := tbStep(t, events, tbStepNameExecs)
	out := tbHostOutput(events, tbStepNameExecs, named.Hosts[0])
	if named.Type != journal.StepEnd || !strings.Contains(out, "on e2 (not reached)") {
		t.Errorf("%s: %s, printed %q; want it to name e2", tbStepNameExecs, named.Type, out)
	}
	if c.started == "" {
		t.Errorf("the master's qmaster was not started")
	}
}

// TestTakebackLocalCommonRestoreSpool: with --restore-spool and a local
// common/, the restored spool goes into the master's bootstrap and into
// the shadow's too (a later takeover copies the spool the shadow's
// bootstrap names).
func TestTakebackLocalCommonRestoreSpool(t *testing.T) {
	c := newTBCluster(t, true)
	events, err := tbRunVars(t, c, "auto", true)
	if err != nil {
		t.Fatalf("takeback --restore-spool: %v", err)
	}
	want := fmt.Sprintf(tbBootTmpl, tbOrigDir+".orig-20261201010000", tbOrigDB+".orig-20261201010000")
	for _, h := range []string{"m", "s"} {
		if got := c.read(h, tbCommon+"/bootstrap"); got != want {
			t.Errorf("bootstrap on %s:\n%s\nwant\n%s", h, got, want)
		}
	}
	if c.started != want {
		t.Errorf("the master's qmaster started with bootstrap\n%s", c.started)
	}
	if ev := tbStep(t, events, "point the shadow's bootstrap at the restored spool where common/ is not shared"); ev.Type != journal.StepEnd {
		t.Errorf("the shadow's bootstrap step: %s, want done", ev.Type)
	}
}

// TestTakebackSharedCommonRestoreSpool: one common/: the one bootstrap
// names the restored spool, and the shadow's step is skipped.
func TestTakebackSharedCommonRestoreSpool(t *testing.T) {
	c := newTBCluster(t, false)
	events, err := tbRunVars(t, c, "auto", true)
	if err != nil {
		t.Fatalf("takeback --restore-spool: %v", err)
	}
	want := fmt.Sprintf(tbBootTmpl, tbOrigDir+".orig-20261201010000", tbOrigDB+".orig-20261201010000")
	if got := c.read("m", tbCommon+"/bootstrap"); got != want {
		t.Errorf("bootstrap:\n%s\nwant\n%s", got, want)
	}
	if ev := tbStep(t, events, "point the shadow's bootstrap at the restored spool where common/ is not shared"); ev.Type != journal.StepSkip {
		t.Errorf("the shadow's bootstrap step: %s, want skipped", ev.Type)
	}
}

// TestTakebackRestoresTheFencedAutostart: the takeback turns on, on the
// master, exactly the autostart the takeover's fence recorded there, and
// removes the record; another host's record is not touched.
func TestTakebackRestoresTheFencedAutostart(t *testing.T) {
	const rec = "/var/lib/sgerun/fenced-autostart"
	c := newTBCluster(t, false)
	c.write("m", rec, "systemd sgemaster.p7444.service\nsysv gridengine-master\n")
	c.write("s", rec, "sysv gridengine-master\n")
	events, err := tbRun(t, c, "auto")
	if err != nil {
		t.Fatalf("takeback: %v", err)
	}
	if got := strings.Join(c.enabled["m"], ","); got != "sgemaster.p7444.service,gridengine-master" {
		t.Errorf("autostart turned on on m: %q, want the recorded unit and link", got)
	}
	if len(c.enabled["s"]) != 0 || !c.fs("s", rec).files[rec].Exists {
		t.Errorf("the shadow's autostart was touched: %v", c.enabled["s"])
	}
	if c.fs("m", rec).files[rec].Exists {
		t.Errorf("the master's record is still there after every autostart came back")
	}
	ev := tbStep(t, events, "re-enable qmaster autostart on the master")
	if ev.Status != journal.StatusOK || ev.Warnings != nil {
		t.Errorf("autostart step: %s, warnings %v", ev.Status, ev.Warnings)
	}

	// Without a record (fenced by fence_command, or no autostart was on)
	// nothing is turned on.
	c = newTBCluster(t, false)
	if _, err := tbRun(t, c, "auto"); err != nil {
		t.Fatalf("takeback: %v", err)
	}
	if len(c.enabled["m"]) != 0 {
		t.Errorf("autostart turned on without a record: %v", c.enabled["m"])
	}
}

// TestTakebackRollbackBringsTheShadowBack: the master's qmaster does not
// start, before the commit point. The rollback undoes the shutdown: the
// shadow's qmaster runs again (started where none runs), act_qmaster names
// the shadow again and the lock is gone. The cluster is never left without
// a qmaster.
func TestTakebackRollbackBringsTheShadowBack(t *testing.T) {
	c := newTBCluster(t, false)
	c.failStart = true
	events, err := tbRun(t, c, "auto")
	if err == nil {
		t.Fatal("takeback succeeded with a master that cannot start its qmaster")
	}
	if !c.qmaster["s"] || c.qmaster["m"] {
		t.Errorf("qmaster running after the rollback: %v, want only on the shadow", c.qmaster)
	}
	if a := c.read("e1", tbCommon+"/act_qmaster"); a != "s\n" {
		t.Errorf("act_qmaster %q after the rollback, want s", a)
	}
	if lock := "/spool/.sgerun-takeover.lock"; c.spool.files[lock].Exists {
		t.Errorf("the takeover lock is left after the rollback")
	}
	var undone []string
	for _, ev := range events {
		if ev.Type == journal.UndoEnd {
			undone = append(undone, ev.Kind)
		}
	}
	if len(undone) == 0 || undone[len(undone)-1] != "unlock_file" || !strings.Contains(strings.Join(undone, " "), "sge_start_qmaster") {
		t.Errorf("undos %v: want the shutdown undone (sge_start_qmaster) and the lock released last", undone)
	}
}
