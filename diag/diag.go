// Package diag reports problems in user input (inventories, runbooks) with
// the file, line and column they come from.
package diag

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"

	goccy "github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/parser"
	"go.yaml.in/yaml/v3"
)

// ErrInvalid is matched (errors.Is) by every input error. The CLI maps it to
// exit code 2: nothing was executed.
var ErrInvalid = errors.New("invalid input")

// Error is one problem at one position. Line and Col are 1-based; zero means
// unknown.
type Error struct {
	File string
	Line int
	Col  int
	Msg  string
}

// Error renders "file:line:col: msg".
func (e Error) Error() string {
	switch {
	case e.Line > 0:
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg)
	case e.File != "":
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
	return e.Msg
}

// Is makes every Error match ErrInvalid.
func (e Error) Is(target error) bool { return target == ErrInvalid }

// List collects every problem found in one input, so a user sees all of them
// at once.
type List struct {
	File   string
	Errors []Error
}

// At records a problem at the position of node (which may be nil).
func (l *List) At(node *yaml.Node, format string, args ...any) {
	e := Error{File: l.File, Msg: fmt.Sprintf(format, args...)}
	if node != nil {
		e.Line, e.Col = node.Line, node.Column
	}
	l.Errors = append(l.Errors, e)
}

// AtPos records a problem at an explicit position.
func (l *List) AtPos(line, col int, format string, args ...any) {
	l.Errors = append(l.Errors, Error{File: l.File, Line: line, Col: col, Msg: fmt.Sprintf(format, args...)})
}

// Add appends an existing error, keeping its position when it is an Error or
// List, and otherwise attributing it to the file.
func (l *List) Add(err error) {
	if err == nil {
		return
	}
	var one Error
	var many *List
	switch {
	case errors.As(err, &many):
		l.Errors = append(l.Errors, many.Errors...)
	case errors.As(err, &one):
		l.Errors = append(l.Errors, one)
	default:
		l.Errors = append(l.Errors, Error{File: l.File, Msg: err.Error()})
	}
}

// Len is the number of problems recorded.
func (l *List) Len() int { return len(l.Errors) }

// Err returns nil when the list is empty and the list itself otherwise, with
// errors sorted by position.
func (l *List) Err() error {
	if len(l.Errors) == 0 {
		return nil
	}
	sort.SliceStable(l.Errors, func(i, j int) bool {
		a, b := l.Errors[i], l.Errors[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	return l
}

// Error renders every problem on its own line.
func (l *List) Error() string {
	parts := make([]string, len(l.Errors))
	for i, e := range l.Errors {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "\n")
}

// Is makes a List match ErrInvalid.
func (l *List) Is(target error) bool { return target == ErrInvalid }

// FromYAML converts a yaml decoding error of data into positioned errors.
// yaml.v3 reports only a line for a syntax error, and sometimes the line
// where the enclosing block began; the position (line and column) and
// message come from goccy/go-yaml's parser instead when it finds the
// problem too.
func FromYAML(file string, data []byte, err error) error {
	if err == nil {
		return nil
	}
	l := &List{File: file}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		for _, m := range te.Errors {
			l.AtPos(lineOf(m), 1, "%s", stripLine(m))
		}
		return l.Err()
	}
	msg := err.Error()
	v3line := lineOf(msg)
	// yaml.v3's line errs early: at the start of the enclosing block, or
	// past the end for an unterminated quote. goccy's errs early only on a
	// plain scalar continued onto the next line, where yaml.v3 is right.
	if line, col, gmsg, ok := syntaxAt(data); ok &&
		(v3line == 0 || line >= v3line || v3line > bytes.Count(data, []byte("\n"))) {
		l.AtPos(line, col, "%s", gmsg)
		return l.Err()
	}
	l.AtPos(v3line, 1, "%s", stripLine(strings.TrimPrefix(msg, "yaml: ")))
	return l.Err()
}

// syntaxAt locates a YAML syntax error in data with goccy/go-yaml's parser.
// ok is false when that parser accepts data or gives no position.
func syntaxAt(data []byte) (line, col int, msg string, ok bool) {
	defer func() {
		if recover() != nil {
			// A second parser must never turn bad input into a crash:
			// fall back to yaml.v3's line.
			ok = false
		}
	}()
	_, err := parser.ParseBytes(data, 0)
	var se *goccy.SyntaxError
	if !errors.As(err, &se) || se.Token == nil || se.Token.Position == nil || se.Token.Position.Line < 1 {
		return 0, 0, "", false
	}
	col = max(se.Token.Position.Column, 1)
	// Its messages quote the offending character as is: show a tab as \t.
	msg = strings.NewReplacer("\t", `\t`, "\r", `\r`).Replace(se.Message)
	return se.Token.Position.Line, col, msg, true
}

func lineOf(msg string) int {
	i := strings.Index(msg, "line ")
	if i < 0 {
		return 0
	}
	n := 0
	for _, c := range msg[i+5:] {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
	}
	return n
}

func stripLine(msg string) string {
	msg = strings.TrimPrefix(msg, "yaml: ")
	if i := strings.Index(msg, "line "); i == 0 {
		if j := strings.Index(msg, ": "); j > 0 {
			return msg[j+2:]
		}
	}
	return msg
}
