package inventory

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/sgerun/sgerun/diag"
	"github.com/sgerun/sgerun/yamlx"
	"go.yaml.in/yaml/v3"
)

// wantRE reads a bad fixture's first line, "# want: LINE:COL: substring".
var wantRE = regexp.MustCompile(`^# want: (\d+):(\d+): (.+)$`)

func TestBadFixtures(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 40 {
		t.Fatalf("found only %d bad fixtures", len(files))
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml"), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			firstLine, _, _ := strings.Cut(string(data), "\n")
			m := wantRE.FindStringSubmatch(firstLine)
			if m == nil {
				t.Fatalf("first line %q is not \"# want: LINE:COL: substring\"", firstLine)
			}
			line, _ := strconv.Atoi(m[1])
			col, _ := strconv.Atoi(m[2])
			inv, err := Parse(f, data)
			if err == nil {
				t.Fatalf("parsed without error: %+v", inv)
			}
			if !errors.Is(err, diag.ErrInvalid) {
				t.Errorf("error does not match diag.ErrInvalid: %v", err)
			}
			var list *diag.List
			if !errors.As(err, &list) {
				t.Fatalf("error is %T, not *diag.List: %v", err, err)
			}
			for _, e := range list.Errors {
				if e.File != f {
					t.Errorf("error names file %q, want %q", e.File, f)
				}
				if e.File == f && e.Line == line && e.Col == col && strings.Contains(e.Msg, m[3]) {
					return
				}
			}
			t.Errorf("no error at %d:%d containing %q; got:\n%v", line, col, m[3], err)
		})
	}
}

func TestEmptyInputs(t *testing.T) {
	for _, in := range []string{"", "\n\n", "# only a comment\n", "---\n", "~\n", "null"} {
		_, err := Parse("empty.yaml", []byte(in))
		if err == nil || !strings.Contains(err.Error(), "empty inventory") {
			t.Errorf("Parse(%q) = %v, want an empty inventory error", in, err)
		}
		if !errors.Is(err, diag.ErrInvalid) {
			t.Errorf("Parse(%q) error does not match diag.ErrInvalid", in)
		}
	}
}

// minimal is testdata/good/minimal.yaml, relied on below for positions.
func minimal(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/good/minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestHostNameInjectionRejected(t *testing.T) {
	for _, key := range []string{
		`"a;rm -rf /"`,
		`"$(reboot)"`,
		`"gc01\nreboot"`,
		"\"`id`\"",
		`"gc01 gc02"`,
		`"-oProxyCommand=x"`,
		`"gc[1-2]$(x)"`,
	} {
		data := strings.Replace(string(minimal(t)), "  s1: {}\n", "  s1: {}\n  "+key+": {}\n", 1)
		_, err := Parse("inj.yaml", []byte(data))
		var list *diag.List
		if !errors.As(err, &list) {
			t.Fatalf("key %s: error %v is not a *diag.List", key, err)
		}
		found := false
		for _, e := range list.Errors {
			// The injected key is line 8, column 3 of the modified file.
			if e.Line == 8 && e.Col == 3 && strings.Contains(e.Msg, "bad host name") {
				found = true
			}
		}
		if !found {
			t.Errorf("key %s: no positioned bad host name error at 8:3; got %v", key, err)
		}
	}
}

func TestBadAddressRejected(t *testing.T) {
	for _, addr := range []string{`"10.0.0.1;id"`, `"$(id)"`, `"a b"`, `"[::1"`, `"[10.0.0.1]"`, `"::zz"`, `"fe80::1%eth0;id"`, `"-x"`} {
		data := strings.Replace(string(minimal(t)), "{address: 10.0.0.1}", "{address: "+addr+"}", 1)
		_, err := Parse("addr.yaml", []byte(data))
		if err == nil || !strings.Contains(err.Error(), "addr.yaml:6:17: bad hosts.m1.address") {
			t.Errorf("address %s: got %v", addr, err)
		}
	}
}

func TestMinimalDefaults(t *testing.T) {
	inv, err := Parse("minimal.yaml", minimal(t))
	if err != nil {
		t.Fatal(err)
	}
	want := Cluster{SGERoot: "/opt/sge", SGECell: "default", QmasterPort: 6444, ExecdPort: 6445, CommonShared: SharedAuto}
	if inv.Cluster != want {
		t.Errorf("Cluster = %+v, want %+v", inv.Cluster, want)
	}
	wantSSH := SSH{User: "root", Port: 22, KnownHosts: "~/.ssh/known_hosts", ConnectTimeout: 10 * time.Second, MaxHandshakes: 32,
		Explicit: Explicit{User: true}}
	if inv.SSH != wantSSH {
		t.Errorf("SSH = %+v, want %+v", inv.SSH, wantSSH)
	}
	def, err := ParseTolerance(DefaultExecTolerate)
	if err != nil {
		t.Fatal(err)
	}
	wantPol := Policy{Fanout: 64, Quorum: 3, Antiflap: 30 * time.Minute, QmasterStartTimeout: 120 * time.Second,
		HeartbeatStale: 90 * time.Second, ExecTolerate: def}
	if inv.Policy != wantPol {
		t.Errorf("Policy = %+v, want %+v", inv.Policy, wantPol)
	}
	if !reflect.DeepEqual(inv.Hooks, Hooks{Timeout: 60 * time.Second}) {
		t.Errorf("Hooks = %+v", inv.Hooks)
	}
	if inv.Watch != (Watch{Interval: 5 * time.Second, Confirm: 20 * time.Second}) {
		t.Errorf("Watch = %+v", inv.Watch)
	}
	var names []string
	for _, h := range inv.Hosts {
		names = append(names, h.Name)
	}
	if want := []string{"m1", "s1", "gc01", "gc02", "gc03", "gc04"}; !reflect.DeepEqual(names, want) {
		t.Errorf("hosts = %v, want %v", names, want)
	}
	gc3, ok := inv.Host("GC03")
	if !ok || *gc3 != (Host{Name: "gc03", Address: "gc03", User: "root", Port: 22, Explicit: Explicit{User: true}, Line: 8, Col: 3}) {
		t.Errorf("Host(GC03) = %+v, %v", gc3, ok)
	}
	m1, _ := inv.Host("m1")
	if m1.Address != "10.0.0.1" || !m1.Explicit.Address || m1.Explicit.Port || m1.Line != 6 || m1.Col != 3 {
		t.Errorf("m1 = %+v", m1)
	}
	// Witnesses default to execd (master and shadow excluded): 4 witnesses
	// plus the shadow are 5 voters, so the quorum is 3.
	if got := inv.Role(RoleWitnesses); !reflect.DeepEqual(got, []string{"gc01", "gc02", "gc03", "gc04"}) {
		t.Errorf("witnesses = %v", got)
	}
	if got := inv.Role(RoleMaster); !reflect.DeepEqual(got, []string{"m1"}) {
		t.Errorf("master = %v", got)
	}
	if inv.Role("nope") != nil {
		t.Error("Role(nope) is not nil")
	}
}

func TestDefaultUserIsCurrentUser(t *testing.T) {
	data := strings.Replace(string(minimal(t)), "ssh:\n  user: root\n", "", 1)
	inv, err := Parse("nouser.yaml", []byte(data))
	if cur := currentUser(); cur == "" {
		if err == nil || !strings.Contains(err.Error(), "current user is unknown") {
			t.Errorf("no current user: got %v", err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if inv.SSH.User != currentUser() || inv.Hosts[0].User != currentUser() {
		t.Errorf("user = %q / %q, want %q", inv.SSH.User, inv.Hosts[0].User, currentUser())
	}
}

func TestFullFixture(t *testing.T) {
	inv, err := Load("testdata/good/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	wantCluster := Cluster{SGERoot: "/var/lib/gridengine", SGECell: "lab_1", QmasterPort: 16444, ExecdPort: 16445,
		CommonShared: SharedNo, FenceCommand: "ipmitool -H \"$SGERUN_FENCE_ADDRESS\" chassis power off\n",
		RCExecd: "/etc/init.d/sgeexecd"}
	if inv.Cluster != wantCluster {
		t.Errorf("Cluster = %+v\nwant      %+v", inv.Cluster, wantCluster)
	}
	wantSSH := SSH{User: "admin", Port: 2222, IdentityFile: "~/.ssh/lab", KnownHosts: "/etc/sgerun/known_hosts",
		TOFU: true, Jump: "gw.example.org,ops@[2001:db8::1]:22", SSHConfig: "none", ConnectTimeout: 3 * time.Second, MaxHandshakes: 4,
		Explicit: Explicit{User: true, Port: true, KnownHosts: true, ConnectTimeout: true}}
	if inv.SSH != wantSSH {
		t.Errorf("SSH = %+v\nwant  %+v", inv.SSH, wantSSH)
	}
	xa := Explicit{Address: true, User: true, Port: true}
	xu := Explicit{User: true, Port: true}
	wantHosts := []Host{
		{Name: "qm", Address: "2001:db8::10", FenceAddress: "bmc-qm.lab", User: "admin", IdentityFile: "~/.ssh/lab", Port: 2222, Explicit: xa, Line: 22, Col: 3},
		{Name: "sh", Address: "2001:db8::11", User: "root", IdentityFile: "/root/.ssh/id", Port: 22, Explicit: xa, Line: 23, Col: 3},
		{Name: "r1n01", Address: "r1n01", User: "admin", IdentityFile: "~/.ssh/lab", Port: 2222, Explicit: xu, Line: 24, Col: 3},
		{Name: "r1n02", Address: "r1n02", User: "admin", IdentityFile: "~/.ssh/lab", Port: 2222, Explicit: xu, Line: 24, Col: 3},
		{Name: "r2n01", Address: "r2n01", User: "admin", IdentityFile: "~/.ssh/lab", Port: 2222, Explicit: xu, Line: 24, Col: 3},
		{Name: "r2n02", Address: "r2n02", User: "admin", IdentityFile: "~/.ssh/lab", Port: 2222, Explicit: xu, Line: 24, Col: 3},
		{Name: "login-1", Address: "login-1", User: "admin", IdentityFile: "~/.ssh/lab", Port: 2222, Explicit: xu, Line: 25, Col: 3},
		{Name: "login-2", Address: "login-2", User: "admin", IdentityFile: "~/.ssh/lab", Port: 2222, Explicit: xu, Line: 26, Col: 3},
	}
	if len(inv.Hosts) != len(wantHosts) {
		t.Fatalf("%d hosts, want %d", len(inv.Hosts), len(wantHosts))
	}
	for i, h := range inv.Hosts {
		if *h != wantHosts[i] {
			t.Errorf("host %d = %+v\nwant     %+v", i, *h, wantHosts[i])
		}
	}
	wantRoles := map[string][]string{
		"master":    {"qm"},
		"shadow":    {"sh"},
		"execd":     {"r1n01", "r1n02", "r2n01", "r2n02", "sh"},
		"witnesses": {},
		"login":     {"login-1", "login-2"},
	}
	if !reflect.DeepEqual(inv.Roles, wantRoles) {
		t.Errorf("Roles = %v, want %v", inv.Roles, wantRoles)
	}
	wantPol := Policy{Fanout: 8, Quorum: 1, Antiflap: time.Hour, QmasterStartTimeout: 5 * time.Minute,
		HeartbeatStale: 150 * time.Second, ExecTolerate: Tolerance{Count: 3}}
	if inv.Policy != wantPol {
		t.Errorf("Policy = %+v, want %+v", inv.Policy, wantPol)
	}
	wantHooks := Hooks{PreTakeover: []string{"logger pre"}, PostTakeover: []string{"logger post", "notify --all"},
		Timeout: 15 * time.Second}
	if !reflect.DeepEqual(inv.Hooks, wantHooks) {
		t.Errorf("Hooks = %+v", inv.Hooks)
	}
	if inv.Watch != (Watch{Interval: 5 * time.Second, Confirm: time.Minute}) {
		t.Errorf("Watch = %+v", inv.Watch)
	}
	if inv.File != "testdata/good/full.yaml" {
		t.Errorf("File = %q", inv.File)
	}
}

func TestGoodFixturesParse(t *testing.T) {
	files, err := filepath.Glob("testdata/good/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if _, err := Load(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestExampleParses(t *testing.T) {
	inv, err := Load("../inventory.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if inv.Cluster.SGERoot != "/engrid/ensge" || inv.SSH.User != "root" {
		t.Errorf("unexpected values: %+v %+v", inv.Cluster, inv.SSH)
	}
	if got := inv.Role(RoleExecd); !reflect.DeepEqual(got, []string{"gc001", "gc002", "gc003", "gc004"}) {
		t.Errorf("execd = %v", got)
	}
	h, _ := inv.Host("sgemaster")
	if h.Address != "10.0.0.1" || h.FenceAddress != "10.1.0.1" {
		t.Errorf("sgemaster = %+v", h)
	}
}

// TestExampleNamesEveryKey checks inventory.example.yaml against the
// schema (the file struct and its yaml tags): the example names every key
// of the schema and no key the schema lacks, so it stays the reference.
// roles.execd's mapping form is checked on the example's commented line
// "#   execd: {from_sge: ...}".
func TestExampleNamesEveryKey(t *testing.T) {
	data, err := os.ReadFile("../inventory.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, doc []byte, typ reflect.Type) {
		t.Helper()
		var n yaml.Node
		if err := yaml.Unmarshal(doc, &n); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		missing, unknown := yamlx.Coverage(&n, typ)
		for _, k := range missing {
			t.Errorf("%s does not name the key %s", what, k)
		}
		for _, k := range unknown {
			t.Errorf("%s names %s, which is not a key of the schema", what, k)
		}
		if len(yamlx.Keys(typ)) == 0 {
			t.Errorf("%s: the schema %v has no keys", what, typ)
		}
	}
	check("inventory.example.yaml", data, reflect.TypeFor[file]())
	m := regexp.MustCompile(`(?m)^\s*#\s+execd: (\{.*\})$`).FindSubmatch(data)
	if m == nil {
		t.Fatal("inventory.example.yaml has no commented line \"#   execd: {from_sge: ...}\"")
	}
	check("the example's roles.execd mapping", m[1], reflect.TypeFor[execdFile]())
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want fs.ErrNotExist", err)
	}
	if errors.Is(err, diag.ErrInvalid) {
		t.Error("a missing file is not invalid input")
	}
}

func TestCollectsAllErrors(t *testing.T) {
	data := strings.Replace(string(minimal(t)), "  sge_root: /opt/sge\n", "  sge_root: opt\n  bogus: 1\n", 1)
	data += "policy:\n  fanout: 0\n"
	_, err := Parse("many.yaml", []byte(data))
	var list *diag.List
	if !errors.As(err, &list) || list.Len() != 3 {
		t.Fatalf("want 3 errors, got %v", err)
	}
	want := []string{"many.yaml:2:13:", "many.yaml:3:3:", "many.yaml:15:11:"}
	for i, e := range list.Errors {
		if !strings.HasPrefix(e.Error(), want[i]) {
			t.Errorf("error %d = %q, want prefix %q", i, e.Error(), want[i])
		}
	}
}

func TestSelect(t *testing.T) {
	inv, err := Load("testdata/good/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		sel  []string
		want []string
	}{
		{[]string{"all"}, []string{"qm", "sh", "r1n01", "r1n02", "r2n01", "r2n02", "login-1", "login-2"}},
		{[]string{"login", "qm"}, []string{"qm", "login-1", "login-2"}},
		{[]string{"r2n[01-02]", "R1N01", "execd"}, []string{"sh", "r1n01", "r1n02", "r2n01", "r2n02"}},
		{[]string{"witnesses"}, nil},
		{nil, nil},
	}
	for _, tt := range tests {
		got, err := inv.Select(tt.sel)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Select(%q) = %v, %v; want %v", tt.sel, got, err, tt.want)
		}
	}
	_, err = inv.Select([]string{"qm", "nosuch", "r[1-3]n01", "x[2-1]"})
	if !errors.Is(err, ErrUnknown) || !errors.Is(err, ErrPattern) {
		t.Errorf("Select(bad) = %v, want ErrUnknown and ErrPattern", err)
	}
	for _, s := range []string{`"nosuch"`, `"r3n01"`, `"x[2-1]"`} {
		if err == nil || !strings.Contains(err.Error(), s) {
			t.Errorf("Select(bad) error %v does not mention %s", err, s)
		}
	}
}

func TestHostByHandBuiltInventory(t *testing.T) {
	inv := &Inventory{Hosts: []*Host{{Name: "a"}, {Name: "B"}}}
	if h, ok := inv.Host("b"); !ok || h.Name != "B" {
		t.Errorf("Host(b) = %v, %v", h, ok)
	}
	if _, ok := inv.Host("c"); ok {
		t.Error("Host(c) found")
	}
}

func TestTemplateData(t *testing.T) {
	inv, err := Load("testdata/good/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tmpl := template.Must(template.New("t").Option("missingkey=error").Parse(
		`{{.cluster.sge_root}}/{{.cluster.sge_cell}} {{.cluster.qmaster_port}} {{.cluster.common_shared}}|` +
			`{{range .roles.execd}}{{(index $.hosts .).address}}:{{(index $.hosts .).port}} {{end}}|` +
			`{{.policy.antiflap}} {{.policy.antiflap_seconds}} {{.policy.heartbeat_stale_seconds}} {{.policy.exec_tolerate}} {{.policy.quorum}}|` +
			`{{.ssh.user}}:{{.ssh.port}}|{{range $m := .roles.master}}{{(index $.hosts $m).fence_address}}{{end}}|` +
			`{{range .host_names}}{{.}},{{end}}`))
	var b strings.Builder
	if err := tmpl.Execute(&b, inv.TemplateData()); err != nil {
		t.Fatal(err)
	}
	want := "/var/lib/gridengine/lab_1 16444 no|" +
		"r1n01:2222 r1n02:2222 r2n01:2222 r2n02:2222 2001:db8::11:22 |" +
		"1h0m0s 3600 150 3 1|admin:2222|bmc-qm.lab|qm,sh,r1n01,r1n02,r2n01,r2n02,login-1,login-2,"
	if b.String() != want {
		t.Errorf("template output\n got %q\nwant %q", b.String(), want)
	}
	// The data is a fresh copy: changing it leaves the inventory alone.
	d := inv.TemplateData()
	cluster := d["cluster"].(map[string]any)
	for _, k := range []string{"sge_root", "sge_cell", "qmaster_port", "execd_port", "common_shared",
		"fence_command", "rc_master", "rc_execd", "shared_dir"} {
		if _, ok := cluster[k]; !ok {
			t.Errorf("cluster template data has no %s: %v", k, cluster)
		}
	}
	if cluster["qmaster_port"] != 16444 || cluster["rc_execd"] != inv.Cluster.RCExecd {
		t.Errorf("cluster template data %v", cluster)
	}
	d["roles"].(map[string]any)["master"].([]string)[0] = "changed"
	if inv.Roles[RoleMaster][0] != "qm" {
		t.Error("TemplateData shares the role slices with the inventory")
	}
}

func TestLargeInventoryIsFast(t *testing.T) {
	data := "cluster: {sge_root: /opt/sge}\nssh: {user: root}\nhosts:\n  m: {}\n  s: {}\n  n[1-99998]: {}\n" +
		"roles:\n  master: m\n  shadow: s\n  execd: [\"n[1-99998]\", \"n[1-99998]\"]\n"
	start := time.Now()
	inv, err := Parse("large.yaml", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Hosts) != MaxExpand || len(inv.Role(RoleExecd)) != 99998 {
		t.Errorf("%d hosts, %d execd", len(inv.Hosts), len(inv.Role(RoleExecd)))
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("parsing %d hosts took %v", len(inv.Hosts), d)
	}

	// One host more is refused.
	_, err = Parse("large.yaml", []byte(strings.Replace(data, "n[1-99998]: {}", "n[1-99999]: {}", 1)))
	if err == nil || !strings.Contains(err.Error(), "large.yaml:6:3: more than 100000 hosts") {
		t.Errorf("101000 hosts: %v", err)
	}

	// Roles together may not expand without bound.
	many := strings.Repeat(`"n[1-99998]", `, 11)
	_, err = Parse("large.yaml", []byte(strings.Replace(data, `["n[1-99998]", "n[1-99998]"]`, "["+many+"]", 1)))
	if err == nil || !strings.Contains(err.Error(), "roles name more than 1000000 hosts in total") {
		t.Errorf("huge roles: %v", err)
	}
}

func TestHostNamedLikeBuiltinRole(t *testing.T) {
	data := "cluster: {sge_root: /opt/sge}\nssh: {user: root}\nhosts:\n  master: {}\n  shadow: {}\n  node1: {}\n" +
		"roles:\n  master: shadow\n  shadow: master\n  execd: [node1]\n"
	inv, err := Parse("names.yaml", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	got, err := inv.Select([]string{"master"})
	if err != nil || !reflect.DeepEqual(got, []string{"shadow"}) {
		t.Errorf("Select(master) = %v, %v; want the role, [shadow]", got, err)
	}
	if _, err := Parse("names.yaml", []byte(data+"  node1x: [node1]\n")); err != nil {
		t.Errorf("custom role: %v", err)
	}
	_, err = Parse("names.yaml", []byte(data+"  node1: [master]\n"))
	if err == nil || !strings.Contains(err.Error(), "names.yaml:11:3: role \"node1\" has the name of a host") {
		t.Errorf("custom role named like a host: %v", err)
	}
}
