package yamlx

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sgerun/sgerun/diag"
)

type inner struct {
	Port int `yaml:"port"`
}

type schema struct {
	Name  string        `yaml:"name"`
	On    bool          `yaml:"on"`
	Wait  time.Duration `yaml:"wait"`
	Tags  []string      `yaml:"tags"`
	Sub   inner         `yaml:"sub"`
	Hosts Map[inner]    `yaml:"hosts"`
	Raw   *yaml.Node    `yaml:"raw"`
}

func parse(t *testing.T, text string) *yaml.Node {
	t.Helper()
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(text), &n); err != nil {
		t.Fatal(err)
	}
	return n.Content[0]
}

func TestDecode(t *testing.T) {
	l := &diag.List{File: "f"}
	v := schema{Name: "default", Wait: time.Second}
	f, ok := Decoder{List: l, Root: "doc"}.Decode(parse(t, "name:\non: true\ntags: [a, b]\nsub: {port: 22}\nhosts: {h1: {port: 1}, h2: }\nraw: [x]\n"), &v)
	if !ok || l.Len() != 0 {
		t.Fatalf("Decode: %v", l.Err())
	}
	want := schema{Name: "default", On: true, Wait: time.Second, Tags: []string{"a", "b"}, Sub: inner{22}}
	if v.Name != want.Name || v.On != want.On || v.Wait != want.Wait || !reflect.DeepEqual(v.Tags, want.Tags) || v.Sub != want.Sub {
		t.Errorf("decoded %+v, want %+v", v, want)
	}
	if len(v.Hosts) != 2 || v.Hosts[0].Key.Value != "h1" || v.Hosts[0].Value.Port != 1 || v.Raw == nil || v.Raw.Kind != yaml.SequenceNode {
		t.Errorf("hosts %+v raw %+v", v.Hosts, v.Raw)
	}
	if !f.Given("sub.port") || f.Given("name") || f.Value("hosts.h1.port").Line != 5 {
		t.Errorf("fields %+v", f)
	}
}

func TestDecodeReportsEveryProblem(t *testing.T) {
	l := &diag.List{File: "f"}
	var v schema
	_, ok := Decoder{List: l, Root: "doc"}.Decode(parse(t, "nmae: x\non: yes\nwait: 30\nsub: {port: abc, port: 2}\nhosts: [a]\nname: {}\n"), &v)
	if ok {
		t.Fatal("Decode reported no problem")
	}
	got := l.Err().Error()
	for _, want := range []string{
		`f:1:1: unknown key "nmae" in doc (known: name, on, wait, tags, sub, hosts, raw)`,
		`f:2:5: on must be true or false, not "yes"`,
		`f:3:7: wait "30" needs a unit`,
		`f:4:13: sub.port must be an integer, not "abc"`,
		`f:4:18: sub: duplicate key "port" (first at line 4)`,
		`f:5:8: hosts must be a mapping, not a list`,
		`f:6:7: name must be a string, not a mapping`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in\n%s", want, got)
		}
	}
}

func TestCoverage(t *testing.T) {
	missing, unknown := Coverage(parse(t, "name: x\nsub: {port: 1, extra: 2}\nhosts: {a: {}, b: {port: 2}}\nraw: {anything: 1}\nbogus: 1\n"), reflect.TypeFor[schema]())
	if want := []string{"on", "wait", "tags"}; !reflect.DeepEqual(missing, want) {
		t.Errorf("missing = %v, want %v", missing, want)
	}
	if want := []string{"sub.extra", "bogus"}; !reflect.DeepEqual(unknown, want) {
		t.Errorf("unknown = %v, want %v", unknown, want)
	}
}

func TestDocument(t *testing.T) {
	for _, in := range []string{"", "# only a comment\n", "---\n"} {
		l := &diag.List{File: "f"}
		if root, ok := Document(l, []byte(in)); !IsNull(root) || !ok || l.Len() != 0 {
			t.Errorf("Document(%q) = %v, %v, %v; want no document or a null one, true and no problem", in, root, ok, l.Err())
		}
	}
	l := &diag.List{File: "f"}
	root, ok := Document(l, []byte("a: &x 1\nb: *x\n---\nc: 2\n"))
	if !ok || root == nil || root.Kind != yaml.MappingNode {
		t.Fatalf("Document: %v, %v", root, ok)
	}
	if err := l.Err(); err == nil || err.Error() != "f:4:1: only one YAML document is allowed" {
		t.Errorf("second document: %v", err)
	}
	l = &diag.List{File: "f"}
	if root, ok := Document(l, []byte("a: [1\n")); root != nil || ok || l.Len() != 1 || l.Errors[0].Line == 0 {
		t.Errorf("syntax error: %v, %v, %v", root, ok, l.Err())
	}
}
