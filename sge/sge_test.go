package sge

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestSpoolDirAndRespool(t *testing.T) {
	const bdb = "admin_user sgeadmin\nspooling_method         berkeleydb\nspooling_params         /var/spool/gridengine/spooldb\n"
	const classic = "spooling_method classic\nspooling_lib libspoolc\nspooling_params /opt/sge/default/common;/opt/sge/default/spool/qmaster\n"
	tests := []struct {
		name, boot, dir, respooled string
	}{
		{"berkeleydb", bdb, "/var/spool/gridengine/spooldb", "/new/spooldb"},
		{"classic", classic, "/opt/sge/default/spool/qmaster", "/opt/sge/default/common;/new/spooldb"},
		{"no spooling_params", "spooling_method classic\n", "", "/new/spooldb"},
	}
	for _, tt := range tests {
		b := ParseBootstrap(tt.boot)
		if got := b.SpoolDir(); got != tt.dir {
			t.Errorf("%s: SpoolDir = %q, want %q", tt.name, got, tt.dir)
		}
		if got := b.Respool("/new/spooldb"); got != tt.respooled {
			t.Errorf("%s: Respool = %q, want %q", tt.name, got, tt.respooled)
		}
	}
}

func TestParseBootstrap(t *testing.T) {
	b := ParseBootstrap("# comment\nadmin_user  sgeadmin\nbinary_path  /opt/sge/bin \nqmaster_spool_dir /var/spool/sge/qmaster\n" +
		"spooling_method berkeleydb\nspooling_params /var/spool/sge/spooldb\nsecurity_mode none\nignore_fqdn\n")
	want := Bootstrap{SpoolingMethod: "berkeleydb", SpoolingParams: "/var/spool/sge/spooldb",
		QmasterSpoolDir: "/var/spool/sge/qmaster", BinaryPath: "/opt/sge/bin", AdminUser: "sgeadmin"}
	want.text = b.text
	if b != want {
		t.Errorf("ParseBootstrap = %+v, want %+v", b, want)
	}
	if got := b.Value("security_mode"); got != "none" {
		t.Errorf("Value(security_mode) = %q", got)
	}
	if got := b.Value("ignore_fqdn"); got != "" {
		t.Errorf("Value of a key without a value = %q, want empty", got)
	}
	if got := b.Value("missing"); got != "" {
		t.Errorf("Value(missing) = %q", got)
	}
	if got := ParseBootstrap("spooling_params  /a b \n").SpoolingParams; got != "/a b" {
		t.Errorf("value with a space = %q, want the rest of the line", got)
	}
}

func TestRecordDir(t *testing.T) {
	boot := ParseBootstrap("qmaster_spool_dir /export/sge/qmaster\n")
	tests := []struct {
		shared string
		b      Bootstrap
		want   string
	}{
		{"/shared", boot, "/shared"},
		{"", boot, "/export/sge"},
		{"", ParseBootstrap("qmaster_spool_dir /qmaster\n"), "/"},
		{"", Bootstrap{}, ""},
	}
	for _, tt := range tests {
		if got := RecordDir(tt.shared, tt.b); got != tt.want {
			t.Errorf("RecordDir(%q, %q) = %q, want %q", tt.shared, tt.b.QmasterSpoolDir, got, tt.want)
		}
	}
}

func TestCellPaths(t *testing.T) {
	c := Cell{Root: "/opt/sge", Name: "default"}
	if got := c.Common(); got != "/opt/sge/default/common" {
		t.Errorf("Common = %q", got)
	}
	if got := c.BootstrapPath(); got != "/opt/sge/default/common/bootstrap" {
		t.Errorf("BootstrapPath = %q", got)
	}
	if got := c.ActQmasterPath(); got != "/opt/sge/default/common/act_qmaster" {
		t.Errorf("ActQmasterPath = %q", got)
	}
}

func TestParseQping(t *testing.T) {
	const up = "09/25/2025 10:00:00 endpoint host/qmaster/1 at port 6444 is up since 10 seconds\n" +
		"09/25/2025 10:00:00:\nSIRM version:             0.1\nstatus:                   0\ninfo:                     ok\n"
	tests := []struct {
		name, out string
		want      int
	}{
		{"reply", up, 0},
		{"bare", "status:  3\n", 3},
		{"indented", "SIRM version: 0.1\n   status: 2\n", 2},
		{"tab and CRLF", "\tstatus:\t1\r\n", 1},
		{"no reply", "error: endpoint not reachable\n", -1},
		{"empty", "", -1},
		{"not a number", "status: up\n", -1},
		{"first number wins", "status: x\nstatus: 1\nstatus: 0\n", 1},
		{"status inside a line", "info: status: 0\n", -1},
	}
	sh, shErr := exec.LookPath("sh")
	for _, tt := range tests {
		if got := ParseQping(tt.out); got != tt.want {
			t.Errorf("%s: ParseQping = %d, want %d", tt.name, got, tt.want)
		}
		if shErr != nil {
			continue
		}
		// The shell's test agrees with ParseQping.
		file := filepath.Join(t.TempDir(), "q")
		if err := os.WriteFile(file, []byte(tt.out), 0o600); err != nil {
			t.Fatal(err)
		}
		err := exec.Command(sh, "-c", QpingRepliedSh+`qping_replied "$0"`, file).Run()
		if replied := err == nil; replied != (tt.want >= 0) {
			t.Errorf("%s: qping_replied %v (%v), ParseQping %d", tt.name, replied, err, tt.want)
		}
	}
}

func TestEnvAndQpingQuote(t *testing.T) {
	env := Env("/opt/my sge", "c;rm")
	if !strings.HasPrefix(env, "SGE_ROOT='/opt/my sge'; SGE_CELL='c;rm'; export SGE_ROOT SGE_CELL; ") {
		t.Errorf("Env does not quote: %s", env)
	}
	if !strings.HasSuffix(env, "; ") {
		t.Errorf("Env must end in \"; \": %q", env)
	}
	if got := QpingInfo("h$(x)", 6444); got != "qping -info 'h$(x)' 6444 qmaster 1" {
		t.Errorf("QpingInfo = %q", got)
	}
}
