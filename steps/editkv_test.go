package steps

import (
	"maps"
	"strings"
	"testing"
)

func TestEditKV(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		set    map[string]string
		append bool
		want   string
		prev   map[string]string
		err    string
	}{
		{
			name: "debian bootstrap: Version first line, comments and alignment kept",
			in: "# Version: 6.2u5\n#\n# DO NOT EDIT\nadmin_user             sgeadmin\n" +
				"default_domain         none\nspooling_method        berkeleydb\nspooling_params        /var/spool/gridengine/spooldb\n",
			set: map[string]string{"spooling_params": "/new/spooldb"},
			want: "# Version: 6.2u5\n#\n# DO NOT EDIT\nadmin_user             sgeadmin\n" +
				"default_domain         none\nspooling_method        berkeleydb\nspooling_params        /new/spooldb\n",
			prev: map[string]string{"spooling_params": "/var/spool/gridengine/spooldb"},
		},
		{
			name: "Version line without a comment mark is a key like any other",
			in:   "Version: 6.2\nqmaster_spool_dir /a\n",
			set:  map[string]string{"qmaster_spool_dir": "/b"},
			want: "Version: 6.2\nqmaster_spool_dir /b\n",
			prev: map[string]string{"qmaster_spool_dir": "/a"},
		},
		{
			name: "a comment naming the key is not touched",
			in:   "# spooling_params old\nspooling_params\t/a\n",
			set:  map[string]string{"spooling_params": "/b"},
			want: "# spooling_params old\nspooling_params\t/b\n",
			prev: map[string]string{"spooling_params": "/a"},
		},
		{
			name: "tabs between key and value kept",
			in:   "a\t\tx\nb \t y\n",
			set:  map[string]string{"a": "1", "b": "2"},
			want: "a\t\t1\nb \t 2\n",
			prev: map[string]string{"a": "x", "b": "y"},
		},
		{
			name: "CRLF line endings kept",
			in:   "a x\r\nb y\r\n",
			set:  map[string]string{"b": "z"},
			want: "a x\r\nb z\r\n",
			prev: map[string]string{"b": "y"},
		},
		{
			name: "no trailing newline kept",
			in:   "a x\nb y",
			set:  map[string]string{"b": "z"},
			want: "a x\nb z",
			prev: map[string]string{"b": "y"},
		},
		{
			name: "key with no value gets a separator",
			in:   "a\nb y\n",
			set:  map[string]string{"a": "1"},
			want: "a 1\nb y\n",
			prev: map[string]string{"a": ""},
		},
		{
			name: "duplicate keys: every line set, first value reported",
			in:   "a 1\nb 2\na 3\n",
			set:  map[string]string{"a": "9"},
			want: "a 9\nb 2\na 9\n",
			prev: map[string]string{"a": "1"},
		},
		{
			name: "prefix of a key is another key",
			in:   "spool x\nspooling y\n",
			set:  map[string]string{"spool": "z"},
			want: "spool z\nspooling y\n",
			prev: map[string]string{"spool": "x"},
		},
		{
			name: "indented line is not a key",
			in:   " a x\n",
			set:  map[string]string{"a": "1"},
			err:  "key(s) a not found",
		},
		{
			name: "missing key is an error without append",
			in:   "a x\n",
			set:  map[string]string{"zz": "1", "b": "2"},
			err:  "key(s) b, zz not found",
		},
		{
			name:   "append adds missing keys sorted",
			in:     "a x\n",
			set:    map[string]string{"zz": "1", "b": "2", "a": "y"},
			append: true,
			want:   "a y\nb 2\nzz 1\n",
			prev:   map[string]string{"a": "x"},
		},
		{
			name:   "append after a last line without newline",
			in:     "a x",
			set:    map[string]string{"b": "2"},
			append: true,
			want:   "a x\nb 2\n",
			prev:   map[string]string{},
		},
		{
			name:   "append to an empty file",
			in:     "",
			set:    map[string]string{"b": "2"},
			append: true,
			want:   "b 2\n",
			prev:   map[string]string{},
		},
		{
			name: "value with a newline refused",
			in:   "a x\n",
			set:  map[string]string{"a": "1\nevil 2"},
			err:  "newline",
		},
		{
			name: "key with a space refused",
			in:   "a x\n",
			set:  map[string]string{"a b": "1"},
			err:  "bad key",
		},
		{
			name: "empty key refused",
			in:   "a x\n",
			set:  map[string]string{"": "1"},
			err:  "bad key",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.in)
			got, prev, err := EditKV(in, tc.set, tc.append)
			if string(in) != tc.in {
				t.Fatal("EditKV modified its input")
			}
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got %q\nwant %q", got, tc.want)
			}
			if !maps.Equal(prev, tc.prev) {
				t.Errorf("prev = %v, want %v", prev, tc.prev)
			}
		})
	}
}

// TestEditKVIdempotent: setting the values a file already has changes no
// byte.
func TestEditKVIdempotent(t *testing.T) {
	in := "# c\r\na\t1\nb  2"
	got, _, err := EditKV([]byte(in), map[string]string{"a": "1", "b": "2"}, false)
	if err != nil || string(got) != in {
		t.Fatalf("got %q, %v", got, err)
	}
}
