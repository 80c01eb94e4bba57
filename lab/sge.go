package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sgerun/sgerun/sge"
	"github.com/sgerun/sgerun/shell"
	"github.com/sgerun/sgerun/steps"
)

// Grid Engine paths of the Debian packages.
const (
	debSGERoot     = "/var/lib/gridengine"
	debShare       = "/usr/share/gridengine"
	adminUser      = "sgeadmin"
	queueName      = "all.q"
	slotsPerHost   = 2
	qmasterTimeout = 90 * time.Second
)

// SpoolDB returns the instance's BDB spool directory (bootstrap
// spooling_params as built).
// With classic spooling there is no database: it is the qmaster spool dir,
// where the flat files live.
func (l *Lab) SpoolDB() string {
	if l.Classic() {
		return l.QmasterSpoolDir()
	}
	return filepath.Join(l.st.StateDir, "spool", "spooldb")
}

// Classic reports whether the lab spools in flat files (bootstrap
// spooling_method classic) rather than Berkeley DB.
func (l *Lab) Classic() bool { return l.st.Spooling == SpoolingClassic }

// spoolingParams is bootstrap's spooling_params: the BDB directory, or for
// classic spooling "<common dir>;<spool dir>".
func (l *Lab) spoolingParams() string {
	if l.Classic() {
		return l.CommonDir() + ";" + l.QmasterSpoolDir()
	}
	return l.SpoolDB()
}

// QmasterSpoolDir returns the instance's qmaster spool directory
// (bootstrap qmaster_spool_dir as built).
func (l *Lab) QmasterSpoolDir() string { return filepath.Join(l.st.StateDir, "spool", "qmaster") }

// ExecdSpoolDir returns the instance's execd spool directory.
func (l *Lab) ExecdSpoolDir() string { return filepath.Join(l.st.StateDir, "spool", "execd") }

// CommonDir returns $SGE_ROOT/$SGE_CELL/common.
func (l *Lab) CommonDir() string { return filepath.Join(l.st.SGERoot, l.st.Cell, "common") }

// sgeadmin returns the uid and gid of the SGE admin user.
func sgeadmin() (int, int, error) {
	u, err := user.Lookup(adminUser)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: user %s: %w", ErrPrerequisite, adminUser, err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return 0, 0, fmt.Errorf("uid of %s: %w", adminUser, err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return 0, 0, fmt.Errorf("gid of %s: %w", adminUser, err)
	}
	return uid, gid, nil
}

// makeCell lays out SGE_ROOT (links to the Debian tree), creates the cell
// with Debian's init_cluster as sgeadmin, writes bootstrap, the global
// configuration, act_qmaster and the rc scripts, and makes sure the
// ordinary user exists.
func (l *Lab) makeCell(ctx context.Context) error {
	uid, gid, err := sgeadmin()
	if err != nil {
		return err
	}
	if err := ensureUser(ctx, l.st.User); err != nil {
		return err
	}
	root := l.st.SGERoot
	if err := os.MkdirAll(root, 0o755); err != nil {
		return fmt.Errorf("create sge root: %w", err)
	}
	for _, d := range []string{"bin", "lib", "util", "utilbin"} {
		if err := os.Symlink(filepath.Join(debSGERoot, d), filepath.Join(root, d)); err != nil {
			return fmt.Errorf("link %s: %w", d, err)
		}
	}
	owned := []string{
		filepath.Join(root, l.st.Cell), l.CommonDir(),
		filepath.Join(l.st.StateDir, "spool"), l.SpoolDB(), l.QmasterSpoolDir(),
		filepath.Join(l.QmasterSpoolDir(), "job_scripts"), l.ExecdSpoolDir(),
	}
	for _, d := range owned {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
		if err := os.Chown(d, uid, gid); err != nil {
			return fmt.Errorf("chown %s: %w", d, err)
		}
	}
	bootstrap, err := l.bootstrap()
	if err != nil {
		return err
	}
	files := []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{"bootstrap", bootstrap, 0o644},
		{"act_qmaster", []byte(l.Master() + "\n"), 0o644},
	}
	for _, f := range files {
		if err := writeOwned(filepath.Join(l.CommonDir(), f.name), f.data, f.mode, uid, gid); err != nil {
			return err
		}
	}
	for _, rc := range []string{"sgemaster", "sgeexecd"} {
		data, err := l.rcScript(rc)
		if err != nil {
			return err
		}
		if err := writeOwned(filepath.Join(l.CommonDir(), rc), data, 0o755, uid, gid); err != nil {
			return err
		}
	}
	if err := l.initCluster(ctx, root, uid, gid); err != nil {
		return err
	}
	// Replace the global configuration init_cluster spooled from Debian's
	// defaults with the lab's (own execd spool dir, fast accounting flush).
	conf, err := l.globalConfig()
	if err != nil {
		return err
	}
	confPath := filepath.Join(l.st.StateDir, "spool", "global.conf")
	if err := writeOwned(confPath, conf, 0o644, uid, gid); err != nil {
		return err
	}
	if err := l.asAdmin(ctx, "/usr/lib/gridengine/spooldefaults", "configuration", confPath); err != nil {
		return err
	}
	return nil
}

// initCluster runs Debian's init_cluster as sgeadmin. That script always
// initialises a Berkeley DB spool; for classic spooling a copy of it
// initialises flat files instead.
func (l *Lab) initCluster(ctx context.Context, root string, uid, gid int) error {
	script := filepath.Join(debShare, "scripts", "init_cluster")
	if l.Classic() {
		b, err := os.ReadFile(script)
		if err != nil {
			return fmt.Errorf("read init_cluster: %w", err)
		}
		const bdb = "spoolinit berkeleydb libspoolb ${spooldir} init"
		if !strings.Contains(string(b), bdb) {
			return fmt.Errorf("init_cluster: no %q line to adapt for classic spooling", bdb)
		}
		script = filepath.Join(l.st.StateDir, "spool", "init_cluster.classic")
		data := strings.Replace(string(b), bdb, `spoolinit classic libspoolc "${spooldir}" init`, 1)
		if err := writeOwned(script, []byte(data), 0o755, uid, gid); err != nil {
			return err
		}
	}
	return l.asAdmin(ctx, script, root, l.st.Cell, l.spoolingParams(), adminUser)
}

// asAdmin runs a program as sgeadmin in the root namespace with the SGE
// environment.
func (l *Lab) asAdmin(ctx context.Context, prog string, args ...string) error {
	argv := append([]string{"-u", adminUser, "--", prog}, args...)
	c := exec.CommandContext(ctx, "runuser", argv...)
	c.Dir = "/"
	c.Env = l.env(adminUser, debSGERoot)
	c.WaitDelay = 3 * time.Second
	if out, err := c.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w: %s", filepath.Base(prog), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// writeOwned writes a file owned by uid:gid.
func writeOwned(path string, data []byte, mode os.FileMode, uid, gid int) error {
	if err := os.WriteFile(path, data, mode); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	if err := os.Chmod(path, mode); err != nil {
		return fmt.Errorf("chmod %s: %w", filepath.Base(path), err)
	}
	if err := os.Chown(path, uid, gid); err != nil {
		return fmt.Errorf("chown %s: %w", filepath.Base(path), err)
	}
	return nil
}

// bootstrap renders the cell's bootstrap from Debian's default one.
func (l *Lab) bootstrap() ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(debShare, "default-bootstrap"))
	if err != nil {
		return nil, fmt.Errorf("read default bootstrap: %w", err)
	}
	set := map[string]string{
		"spooling_params":   l.spoolingParams(),
		"qmaster_spool_dir": l.QmasterSpoolDir(),
		// The rc scripts look for qconf/qping under binary_path/<arch>.
		"binary_path": filepath.Join(l.st.SGERoot, "bin"),
	}
	if l.Classic() {
		set["spooling_method"], set["spooling_lib"] = "classic", "libspoolc"
	}
	out, _, err := steps.EditKV(b, set, false)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	return out, nil
}

// globalConfig renders the cell's global configuration.
func (l *Lab) globalConfig() ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(debShare, "default-configuration"))
	if err != nil {
		return nil, fmt.Errorf("read default configuration: %w", err)
	}
	out, _, err := steps.EditKV(b, map[string]string{
		"execd_spool_dir":  l.ExecdSpoolDir(),
		"reporting_params": "accounting=true reporting=false flush_time=00:00:01 joblog=false sharelog=00:00:00",
		"load_report_time": "00:00:10",
		"max_unheard":      "00:01:00",
	}, false)
	if err != nil {
		return nil, fmt.Errorf("global configuration: %w", err)
	}
	return out, nil
}

// rcScript instantiates an upstream rc template (sgemaster or sgeexecd).
func (l *Lab) rcScript(name string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(debShare, "util", "rctemplates", name+"_template"))
	if err != nil {
		return nil, fmt.Errorf("read %s template: %w", name, err)
	}
	s := strings.NewReplacer(
		"GENROOT", l.st.SGERoot,
		"GENCELL", l.st.Cell,
		"GENSGE_QMASTER_PORT", strconv.Itoa(QmasterPort),
		"GENSGE_EXECD_PORT", strconv.Itoa(ExecdPort),
	).Replace(string(b))
	return []byte(s), nil
}

// ensureUser creates the ordinary user (uid >= 1000, home directory) if
// it does not exist.
func ensureUser(ctx context.Context, name string) error {
	if _, err := user.Lookup(name); err == nil {
		return nil
	}
	_, err := run(ctx, "useradd", "--create-home", "--shell", "/bin/bash", "--comment", "sgerun lab user", name)
	if err != nil {
		// Another lab may have created it at the same moment.
		if _, lerr := user.Lookup(name); lerr == nil {
			return nil
		}
		return fmt.Errorf("create user %s: %w", name, err)
	}
	return nil
}

// rc runs "$SGE_ROOT/$SGE_CELL/common/<script> <args>" on host, logging
// its output to the state dir's log directory.
func (l *Lab) rc(ctx context.Context, host, script string, args ...string) error {
	h, err := l.host(host)
	if err != nil {
		return err
	}
	logf := filepath.Join(l.st.StateDir, "log", h.Short+"-"+script+".log")
	cmd := shell.Join(append([]string{filepath.Join(l.CommonDir(), script)}, args...)...) +
		" </dev/null >>" + shell.Quote(logf) + " 2>&1"
	if _, _, err := l.Exec(ctx, h.Name, cmd); err != nil {
		tail, _ := os.ReadFile(logf)
		return fmt.Errorf("%s %s on %s: %w: %s", script, strings.Join(args, " "), h.Name, err, lastLine(string(tail)))
	}
	return nil
}

// startQmaster starts qmaster on the master host with the rc script and
// waits until qping reports status 0.
func (l *Lab) startQmaster(ctx context.Context) error {
	if err := l.rc(ctx, l.Master(), "sgemaster", "-qmaster", "start"); err != nil {
		return err
	}
	return waitFor(ctx, qmasterTimeout, 500*time.Millisecond, "qmaster", func() (bool, error) {
		st, err := l.QpingStatus(ctx, l.Master(), l.Master())
		return err == nil && st == 0, err
	})
}

// QpingStatus runs "qping -info target 6444 qmaster 1" on host from and
// returns the status number of the reply (0 ok, 1/2 warnings, 3 not
// initialised), or an error when no status came back.
func (l *Lab) QpingStatus(ctx context.Context, from, target string) (int, error) {
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	out, _, err := l.Exec(cctx, from, sge.QpingInfo(target, QmasterPort))
	if st := sge.ParseQping(out); st >= 0 {
		return st, nil
	}
	if err != nil {
		return -1, fmt.Errorf("qping %s: %w", target, err)
	}
	return -1, fmt.Errorf("qping %s: no status line in qping output", target)
}

// configureCell registers the hosts, the queue and the scheduler settings.
func (l *Lab) configureCell(ctx context.Context) error {
	var all []string
	for _, h := range l.st.Hosts {
		all = append(all, h.Name)
	}
	execs := l.ExecHosts()
	confDir := filepath.Join(l.st.StateDir, "spool", "conf")
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		return fmt.Errorf("create conf dir: %w", err)
	}
	script := []string{"set -e"}
	for _, h := range all {
		script = append(script, "qconf -ah "+shell.Quote(h)+" >/dev/null", "qconf -as "+shell.Quote(h)+" >/dev/null")
	}
	for _, h := range execs {
		p := filepath.Join(confDir, "exechost-"+h)
		if err := os.WriteFile(p, []byte(execHostConf(h)), 0o644); err != nil {
			return fmt.Errorf("write exec host %s: %w", h, err)
		}
		script = append(script, "qconf -Ae "+shell.Quote(p)+" >/dev/null")
	}
	q := filepath.Join(confDir, queueName)
	if err := os.WriteFile(q, []byte(l.queueConf(execs)), 0o644); err != nil {
		return fmt.Errorf("write queue: %w", err)
	}
	sc := filepath.Join(confDir, "sched.conf")
	script = append(script,
		"qconf -Aq "+shell.Quote(q)+" >/dev/null",
		"qconf -ssconf | sed -e 's/^schedule_interval .*/schedule_interval 0:0:1/'"+
			" -e 's/^flush_submit_sec .*/flush_submit_sec 1/' -e 's/^flush_finish_sec .*/flush_finish_sec 1/' >"+shell.Quote(sc),
		"qconf -Msconf "+shell.Quote(sc)+" >/dev/null",
	)
	if _, _, err := l.Exec(ctx, l.Master(), strings.Join(script, "\n")); err != nil {
		return fmt.Errorf("configure cell: %w", err)
	}
	return nil
}

// execHostConf renders an exec host for qconf -Ae.
func execHostConf(h string) string {
	return "hostname " + h + "\nload_scaling NONE\ncomplex_values NONE\nuser_lists NONE\n" +
		"xuser_lists NONE\nprojects NONE\nxprojects NONE\nusage_scaling NONE\nreport_variables NONE\n"
}

// queueConf renders the lab's one cluster queue for qconf -Aq.
func (l *Lab) queueConf(hosts []string) string {
	kv := [][2]string{
		{"qname", queueName}, {"hostlist", strings.Join(hosts, " ")}, {"seq_no", "0"},
		{"load_thresholds", "NONE"}, {"suspend_thresholds", "NONE"}, {"nsuspend", "1"},
		{"suspend_interval", "00:05:00"}, {"priority", "0"}, {"min_cpu_interval", "00:05:00"},
		{"processors", "UNDEFINED"}, {"qtype", "BATCH INTERACTIVE"}, {"ckpt_list", "NONE"},
		{"pe_list", "NONE"}, {"rerun", "FALSE"}, {"slots", strconv.Itoa(slotsPerHost)},
		// Per instance, so that two labs' jobs with equal ids never share one.
		{"tmpdir", filepath.Join(l.st.StateDir, "tmp")},
		{"shell", "/bin/sh"}, {"prolog", "NONE"}, {"epilog", "NONE"},
		{"shell_start_mode", "posix_compliant"}, {"starter_method", "NONE"},
		{"suspend_method", "NONE"}, {"resume_method", "NONE"}, {"terminate_method", "NONE"},
		{"notify", "00:00:60"}, {"owner_list", "NONE"}, {"user_lists", "NONE"},
		{"xuser_lists", "NONE"}, {"subordinate_list", "NONE"}, {"complex_values", "NONE"},
		{"projects", "NONE"}, {"xprojects", "NONE"}, {"calendar", "NONE"},
		{"initial_state", "default"},
	}
	for _, lim := range []string{"rt", "cpu", "fsize", "data", "stack", "core", "rss", "vmem"} {
		kv = append(kv, [2]string{"s_" + lim, "INFINITY"}, [2]string{"h_" + lim, "INFINITY"})
	}
	var b strings.Builder
	for _, p := range kv {
		fmt.Fprintf(&b, "%-20s %s\n", p[0], p[1])
	}
	return b.String()
}

// startExecds starts execd on every exec host and waits until each has
// reported load to qmaster.
func (l *Lab) startExecds(ctx context.Context) error {
	for _, h := range l.ExecHosts() {
		if err := l.rc(ctx, h, "sgeexecd", "start"); err != nil {
			return err
		}
	}
	return waitFor(ctx, qmasterTimeout, time.Second, "execd reports", func() (bool, error) {
		missing, err := l.unreportedExecHosts(ctx, l.Master())
		if err != nil {
			return false, err
		}
		if len(missing) > 0 {
			return false, fmt.Errorf("not reporting: %v", missing)
		}
		return true, nil
	})
}

// unreportedExecHosts returns the exec hosts for which qhost, run on host
// from, shows no load report.
func (l *Lab) unreportedExecHosts(ctx context.Context, from string) ([]string, error) {
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	out, _, err := l.Exec(cctx, from, "qhost")
	if err != nil {
		return nil, err
	}
	return sge.NotReporting(out, l.ExecHosts()), nil
}
