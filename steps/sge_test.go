package steps

import "testing"

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
		if got := SpoolDir(tt.boot); got != tt.dir {
			t.Errorf("%s: SpoolDir = %q, want %q", tt.name, got, tt.dir)
		}
		if got := Respool(tt.boot, "/new/spooldb"); got != tt.respooled {
			t.Errorf("%s: Respool = %q, want %q", tt.name, got, tt.respooled)
		}
	}
	if got := BootstrapValue("binary_path  /opt/sge/bin \n", "binary_path"); got != "/opt/sge/bin" {
		t.Errorf("BootstrapValue = %q", got)
	}
}
