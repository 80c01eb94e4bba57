// Package yamlx decodes YAML nodes into typed structs, strictly: every key
// of a mapping must name a field (by its yaml tag), keys are unique, and
// every problem is recorded with its line and column in a diag.List. The
// caller then validates the values, finding each key's position in the
// Fields that Decode returns.
//
// A null value leaves its field as it was, so a struct filled with defaults
// before decoding keeps them for keys left empty. Leaf rules: a string
// takes any scalar as written; an integer wants a YAML integer; a bool wants
// true or false; a time.Duration wants a Go duration with a unit ("90s").
// A field of type yaml.Node or *yaml.Node receives the value node as is, for
// the caller to read. A Map holds a mapping whose keys are free (host names,
// role names), in file order; a Map field tagged `yaml:",inline"` collects
// the keys of its struct that name no other field.
package yamlx

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sgerun/sgerun/diag"
)

// Document reads the one YAML document of data and returns its root node
// (aliases followed), or nil when data holds no document: the caller says
// what empty input means. A syntax error (with its position, see
// diag.FromYAML) and a second document are recorded in l; ok is false when
// the first document could not be read.
func Document(l *diag.List, data []byte) (root *yaml.Node, ok bool) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, true
		}
		l.Add(diag.FromYAML(l.File, data, err))
		return nil, false
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		at := &extra
		if len(extra.Content) > 0 {
			at = extra.Content[0]
		}
		l.At(at, "only one YAML document is allowed")
	case !errors.Is(err, io.EOF):
		l.Add(diag.FromYAML(l.File, data, err))
	}
	if len(doc.Content) == 0 {
		return nil, true
	}
	return Deref(doc.Content[0]), true
}

// maxAliasHops bounds alias chains (a chain of anchors, never a cycle, but
// cheap to bound).
const maxAliasHops = 64

// Field is where one decoded key and its value are in the input.
type Field struct {
	// Key and Value are the key's node and its value's (aliases followed).
	Key, Value *yaml.Node
	// OK is false when the value could not be decoded (and was reported).
	OK bool
}

// Fields maps the dotted path of every key decoded ("cluster.sge_root",
// "hosts.m1.port") to its nodes.
type Fields map[string]Field

// Given reports whether the key at path is present with a non-null value
// that decoded.
func (f Fields) Given(path string) bool {
	fl, ok := f[path]
	return ok && fl.OK && !IsNull(fl.Value)
}

// Key returns the key node at path, or nil when the key is absent.
func (f Fields) Key(path string) *yaml.Node { return f[path].Key }

// Value returns the value node at path, or nil when the key is absent.
func (f Fields) Value(path string) *yaml.Node { return f[path].Value }

// Entry is one key of a Map with its decoded value.
type Entry[T any] struct {
	// Key and Node are the key's node and its value's.
	Key, Node *yaml.Node
	// Value is the decoded value.
	Value T
}

// Map is a mapping whose keys are free, in file order.
type Map[T any] []Entry[T]

// Unmarshaler is implemented by types that decode themselves from a
// (non-null) node, such as a value with a syntax of its own. UnmarshalNode
// records every problem in l, naming the value name, and reports whether
// there was none.
type Unmarshaler interface {
	UnmarshalNode(n *yaml.Node, name string, l *diag.List) bool
}

// entryDecoder is implemented by *Map[T].
type entryDecoder interface {
	decodeEntry(d *decoder, path string, key, val *yaml.Node)
	elemType() reflect.Type
}

func (m *Map[T]) decodeEntry(d *decoder, path string, key, val *yaml.Node) {
	var v T
	ok := d.value(path, val, reflect.ValueOf(&v).Elem())
	d.fields[path] = Field{Key: key, Value: Deref(val), OK: ok}
	*m = append(*m, Entry[T]{Key: key, Node: Deref(val), Value: v})
}

func (m *Map[T]) elemType() reflect.Type { return reflect.TypeFor[T]() }

// Decoder decodes into typed structs, recording problems in List.
type Decoder struct {
	// List collects every problem, with its position.
	List *diag.List
	// Path is the dotted path of the decoded value ("roles.execd"), which
	// the paths of its keys start with; empty for a whole document.
	Path string
	// Root names the decoded value in messages when Path is empty
	// ("inventory", "parameters").
	Root string
}

// Decode decodes node into the value v points to (usually a struct, whose
// node must then be a mapping or null) and returns where each key was. It
// reports whether no problem was found.
func (dc Decoder) Decode(node *yaml.Node, v any) (Fields, bool) {
	d := &decoder{l: dc.List, root: dc.Root, fields: Fields{}}
	before := dc.List.Len()
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		dc.List.At(node, "cannot decode into %T", v)
		return d.fields, false
	}
	d.value(dc.Path, node, rv.Elem())
	return d.fields, dc.List.Len() == before
}

type decoder struct {
	l      *diag.List
	root   string
	fields Fields
}

var (
	nodeType     = reflect.TypeFor[yaml.Node]()
	durationType = reflect.TypeFor[time.Duration]()
)

// name is how messages call the value at path.
func (d *decoder) name(path string) string {
	if path == "" {
		return d.root
	}
	return path
}

// join appends key to path.
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// value decodes n into out, reporting whether it did.
func (d *decoder) value(path string, n *yaml.Node, out reflect.Value) bool {
	n = Deref(n)
	switch out.Type() {
	case nodeType:
		if n != nil {
			out.Set(reflect.ValueOf(*n))
		}
		return true
	case reflect.PointerTo(nodeType):
		out.Set(reflect.ValueOf(n))
		return true
	}
	if IsNull(n) {
		return true
	}
	if u, ok := out.Addr().Interface().(Unmarshaler); ok {
		return u.UnmarshalNode(n, d.name(path), d.l)
	}
	if ed, ok := out.Addr().Interface().(entryDecoder); ok {
		entries, ok := d.entries(path, n)
		for _, e := range entries {
			ed.decodeEntry(d, join(path, e[0].Value), e[0], e[1])
		}
		return ok
	}
	if out.Type() == durationType {
		return d.duration(path, n, out)
	}
	switch out.Kind() {
	case reflect.Pointer:
		if out.IsNil() {
			out.Set(reflect.New(out.Type().Elem()))
		}
		return d.value(path, n, out.Elem())
	case reflect.Struct:
		return d.mapping(path, n, out)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.l.At(n, "%s must be a string, not %s", d.name(path), KindName(n))
			return false
		}
		out.SetString(n.Value)
		return true
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(out.Addr().Interface()) != nil {
			d.l.At(n, "%s must be true or false, not %s", d.name(path), KindName(n))
			return false
		}
		return true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(out.Addr().Interface()) != nil {
			d.l.At(n, "%s must be an integer, not %s", d.name(path), KindName(n))
			return false
		}
		return true
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.l.At(n, "%s must be a list, not %s", d.name(path), KindName(n))
			return false
		}
		s := reflect.MakeSlice(out.Type(), len(n.Content), len(n.Content))
		ok := true
		for i, it := range n.Content {
			ok = d.value(fmt.Sprintf("%s[%d]", d.name(path), i), it, s.Index(i)) && ok
		}
		out.Set(s)
		return ok
	case reflect.Map:
		if out.Type().Key().Kind() != reflect.String {
			break
		}
		entries, ok := d.entries(path, n)
		m := reflect.MakeMapWithSize(out.Type(), len(entries))
		for _, e := range entries {
			v := reflect.New(out.Type().Elem()).Elem()
			ok = d.value(join(path, e[0].Value), e[1], v) && ok
			m.SetMapIndex(reflect.ValueOf(e[0].Value).Convert(out.Type().Key()), v)
		}
		out.Set(m)
		return ok
	}
	if err := n.Decode(out.Addr().Interface()); err != nil {
		d.l.At(n, "%s: %s", d.name(path), strings.TrimPrefix(err.Error(), "yaml: "))
		return false
	}
	return true
}

// duration decodes a Go duration with a unit.
func (d *decoder) duration(path string, n *yaml.Node, out reflect.Value) bool {
	if n.Kind != yaml.ScalarNode {
		d.l.At(n, "%s must be a duration such as \"90s\", not %s", d.name(path), KindName(n))
		return false
	}
	if n.ShortTag() == "!!int" {
		d.l.At(n, "%s %q needs a unit, such as \"%ss\"", d.name(path), n.Value, n.Value)
		return false
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		d.l.At(n, "%s: bad duration %q (want e.g. \"90s\", \"30m\", \"1h30m\")", d.name(path), n.Value)
		return false
	}
	out.SetInt(int64(v))
	return true
}

// mapping decodes a mapping into the struct out.
func (d *decoder) mapping(path string, n *yaml.Node, out reflect.Value) bool {
	if n.Kind != yaml.MappingNode {
		d.l.At(n, "%s must be a mapping, not %s", d.name(path), KindName(n))
		return false
	}
	fields, rest := structFields(out.Type())
	entries, ok := d.entries(path, n)
	for _, e := range entries {
		k, v := e[0], e[1]
		i, known := fields[k.Value]
		if !known {
			if rest < 0 {
				d.l.At(k, "unknown key %q in %s (known: %s)", k.Value, d.name(path), strings.Join(Keys(out.Type()), ", "))
				ok = false
				continue
			}
			out.Field(rest).Addr().Interface().(entryDecoder).decodeEntry(d, join(path, k.Value), k, v)
			continue
		}
		p := join(path, k.Value)
		fok := d.value(p, v, out.Field(i))
		d.fields[p] = Field{Key: k, Value: Deref(v), OK: fok}
		ok = ok && fok
	}
	return ok
}

// entries checks that n is a mapping with unique string keys and returns
// its pairs in order.
func (d *decoder) entries(path string, n *yaml.Node) ([][2]*yaml.Node, bool) {
	if n.Kind != yaml.MappingNode {
		d.l.At(n, "%s must be a mapping, not %s", d.name(path), KindName(n))
		return nil, false
	}
	ok := true
	seen := make(map[string]*yaml.Node)
	var out [][2]*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch {
		case k.Kind != yaml.ScalarNode:
			d.l.At(k, "%s: a key must be a string, not %s", d.name(path), KindName(k))
		case k.ShortTag() == "!!merge":
			d.l.At(k, "%s: merge keys (<<) are not supported", d.name(path))
		case seen[k.Value] != nil:
			d.l.At(k, "%s: duplicate key %q (first at line %d)", d.name(path), k.Value, seen[k.Value].Line)
		default:
			seen[k.Value] = k
			out = append(out, [2]*yaml.Node{k, v})
			continue
		}
		ok = false
	}
	return out, ok
}

// structFields indexes the fields of struct type t by yaml key; rest is the
// index of the inline Map field, or -1.
func structFields(t reflect.Type) (byKey map[string]int, rest int) {
	byKey = make(map[string]int)
	rest = -1
	for i := 0; i < t.NumField(); i++ {
		key, inline, ok := fieldKey(t.Field(i))
		switch {
		case !ok:
		case inline:
			rest = i
		default:
			byKey[key] = i
		}
	}
	return byKey, rest
}

// fieldKey is the yaml key of a struct field; ok is false for a field that
// is not decoded.
func fieldKey(f reflect.StructField) (key string, inline, ok bool) {
	if !f.IsExported() {
		return "", false, false
	}
	tag := f.Tag.Get("yaml")
	name, opts, _ := strings.Cut(tag, ",")
	if name == "-" {
		return "", false, false
	}
	if strings.Contains(","+opts+",", ",inline,") {
		if _, isMap := reflect.New(f.Type).Interface().(entryDecoder); isMap {
			return "", true, true
		}
		return "", false, false
	}
	if name == "" {
		name = strings.ToLower(f.Name)
	}
	return name, false, true
}

// Keys lists the yaml keys of struct type t (or a pointer to one), in field
// order.
func Keys(t reflect.Type) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		if k, inline, ok := fieldKey(t.Field(i)); ok && !inline {
			keys = append(keys, k)
		}
	}
	return keys
}

// Deref follows aliases to the node they name.
func Deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && n.Alias != nil && i < maxAliasHops; i++ {
		n = n.Alias
	}
	return n
}

// IsNull reports whether n is missing, empty or an explicit null.
func IsNull(n *yaml.Node) bool {
	return n == nil || n.Kind == 0 ||
		n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// KindName names a node for messages: "null", "a mapping", "a list", "an
// alias", or a scalar's value quoted.
func KindName(n *yaml.Node) string {
	switch {
	case IsNull(n):
		return "null"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Kind == yaml.AliasNode:
		return "an alias"
	}
	return fmt.Sprintf("%q", n.Value)
}

// Coverage compares a document with the schema of type t: missing lists the
// keys of the schema (dotted paths) that node never names, unknown the keys
// node names that the schema lacks. A Map's entries are compared together
// against its value type, so each key of the value type must appear in one
// of them; yaml.Node fields are not looked into.
func Coverage(node *yaml.Node, t reflect.Type) (missing, unknown []string) {
	named := make(map[string]bool)
	var schema []string
	var walkType func(path string, t reflect.Type)
	walkType = func(path string, t reflect.Type) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if ed, ok := reflect.New(t).Interface().(entryDecoder); ok {
			walkType(join(path, "*"), ed.elemType())
			return
		}
		if t.Kind() == reflect.Slice {
			walkType(path, t.Elem())
			return
		}
		if t.Kind() != reflect.Struct || t == nodeType {
			return
		}
		if reflect.PointerTo(t).Implements(reflect.TypeFor[Unmarshaler]()) {
			return
		}
		for i := 0; i < t.NumField(); i++ {
			key, inline, ok := fieldKey(t.Field(i))
			if !ok || inline {
				continue
			}
			schema = append(schema, join(path, key))
			walkType(join(path, key), t.Field(i).Type)
		}
	}
	walkType("", t)
	known := make(map[string]bool, len(schema))
	for _, k := range schema {
		known[k] = true
	}
	var walkNode func(path string, n *yaml.Node, t reflect.Type)
	walkNode = func(path string, n *yaml.Node, t reflect.Type) {
		n = Deref(n)
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if n == nil || t == nodeType || reflect.PointerTo(t).Implements(reflect.TypeFor[Unmarshaler]()) {
			return
		}
		ed, isMap := reflect.New(t).Interface().(entryDecoder)
		switch {
		case n.Kind == yaml.SequenceNode && t.Kind() == reflect.Slice:
			for _, c := range n.Content {
				walkNode(path, c, t.Elem())
			}
		case n.Kind == yaml.MappingNode && isMap:
			for i := 0; i+1 < len(n.Content); i += 2 {
				walkNode(join(path, "*"), n.Content[i+1], ed.elemType())
			}
		case n.Kind == yaml.MappingNode && t.Kind() == reflect.Struct:
			byKey, _ := structFields(t)
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i].Value
				p := join(path, k)
				if !known[p] {
					unknown = append(unknown, p)
					continue
				}
				named[p] = true
				walkNode(p, n.Content[i+1], t.Field(byKey[k]).Type)
			}
		}
	}
	if node != nil && node.Kind == yaml.DocumentNode && len(node.Content) > 0 {
		node = node.Content[0]
	}
	walkNode("", node, t)
	for _, k := range schema {
		if !named[k] {
			missing = append(missing, k)
		}
	}
	return missing, unknown
}

// Values returns the fields of struct v (or a pointer to one) keyed by
// their yaml keys, for templates that are keyed like the YAML. Nested
// values are kept as they are.
func Values(v any) map[string]any {
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer {
		rv = rv.Elem()
	}
	out := make(map[string]any)
	if rv.Kind() != reflect.Struct {
		return out
	}
	for i := 0; i < rv.NumField(); i++ {
		if k, inline, ok := fieldKey(rv.Type().Field(i)); ok && !inline {
			out[k] = rv.Field(i).Interface()
		}
	}
	return out
}
