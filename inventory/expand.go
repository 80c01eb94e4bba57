package inventory

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MaxExpand is the largest number of names one pattern may expand to.
// ExpandRange refuses larger patterns instead of allocating them.
const MaxExpand = 100000

// maxDigits bounds a range bound so that counts never overflow an int.
const maxDigits = 9

// ErrPattern is matched (errors.Is) by every error of ExpandRange.
var ErrPattern = errors.New("bad host pattern")

// span is one "lo-hi" (or single "n") item of a bracket.
type span struct {
	lo, hi, width int
}

// segment is a literal run of text, or a bracket when spans is non-nil.
type segment struct {
	text  string
	spans []span
	count int
}

// ExpandRange expands a pdsh-style host pattern.
//
// A bracket holds a comma-separated list of numbers and "lo-hi" ranges:
// "gc[001-004]" gives gc001 to gc004 and "n[1-3,7,10-11]" gives n1, n2, n3,
// n7, n10 and n11. Several brackets give their cartesian product in order:
// "r[1-2]n[01-02]" gives r1n01, r1n02, r2n01 and r2n02. Each number is
// zero-padded to the width of the lower bound as written. A pattern without
// brackets is returned as it is, without checking that it is a valid host
// name. Patterns that expand to more than MaxExpand names are refused.
// Errors match ErrPattern.
func ExpandRange(pattern string) ([]string, error) {
	if pattern == "" {
		return nil, fmt.Errorf("%w: empty pattern", ErrPattern)
	}
	segs, total, err := parsePattern(pattern)
	if err != nil {
		return nil, err
	}
	if len(segs) == 1 && segs[0].spans == nil {
		return []string{pattern}, nil
	}
	out := make([]string, 0, total)
	// idx[i] is the position inside bracket i (an odometer over brackets).
	idx := make([]int, len(segs))
	var b strings.Builder
	for range total {
		b.Reset()
		for i, s := range segs {
			if s.spans == nil {
				b.WriteString(s.text)
				continue
			}
			b.WriteString(nth(s.spans, idx[i]))
		}
		out = append(out, b.String())
		for i := len(segs) - 1; i >= 0; i-- {
			if segs[i].spans == nil {
				continue
			}
			idx[i]++
			if idx[i] < segs[i].count {
				break
			}
			idx[i] = 0
		}
	}
	return out, nil
}

// patternSize is how many names ExpandRange would return for pattern,
// found without building them.
func patternSize(pattern string) (int, error) {
	if pattern == "" {
		return 0, fmt.Errorf("%w: empty pattern", ErrPattern)
	}
	_, total, err := parsePattern(pattern)
	return total, err
}

// nth renders the n-th number of a bracket's spans.
func nth(spans []span, n int) string {
	for _, s := range spans {
		size := s.hi - s.lo + 1
		if n < size {
			return fmt.Sprintf("%0*d", s.width, s.lo+n)
		}
		n -= size
	}
	return "" // not reached: n < count
}

// parsePattern splits a pattern into literal and bracket segments and counts
// the names it expands to, refusing more than MaxExpand.
func parsePattern(pattern string) ([]segment, int, error) {
	var segs []segment
	total := 1
	rest := pattern
	for rest != "" {
		open := strings.IndexAny(rest, "[]")
		if open < 0 {
			segs = append(segs, segment{text: rest})
			break
		}
		if rest[open] == ']' {
			return nil, 0, fmt.Errorf("%w %q: ']' without '['", ErrPattern, pattern)
		}
		if open > 0 {
			segs = append(segs, segment{text: rest[:open]})
		}
		rest = rest[open+1:]
		end := strings.IndexAny(rest, "[]")
		if end < 0 || rest[end] == '[' {
			return nil, 0, fmt.Errorf("%w %q: '[' without ']'", ErrPattern, pattern)
		}
		spans, count, err := parseBracket(rest[:end])
		if err != nil {
			return nil, 0, fmt.Errorf("%w %q: %w", ErrPattern, pattern, err)
		}
		if count > MaxExpand/total {
			return nil, 0, fmt.Errorf("%w %q: expands to more than %d names", ErrPattern, pattern, MaxExpand)
		}
		total *= count
		segs = append(segs, segment{spans: spans, count: count})
		rest = rest[end+1:]
	}
	return segs, total, nil
}

// parseBracket parses the inside of one bracket, "1-3,7,10-11".
func parseBracket(body string) ([]span, int, error) {
	if body == "" {
		return nil, 0, errors.New("empty brackets")
	}
	var spans []span
	count := 0
	for item := range strings.SplitSeq(body, ",") {
		loText, hiText, isRange := strings.Cut(item, "-")
		lo, err := bound(loText)
		if err != nil {
			return nil, 0, err
		}
		hi := lo
		if isRange {
			if hi, err = bound(hiText); err != nil {
				return nil, 0, err
			}
			if hi < lo {
				return nil, 0, fmt.Errorf("reversed range %s-%s", loText, hiText)
			}
		}
		size := hi - lo + 1
		if size > MaxExpand || count > MaxExpand-size {
			return nil, 0, fmt.Errorf("expands to more than %d names", MaxExpand)
		}
		count += size
		spans = append(spans, span{lo: lo, hi: hi, width: len(loText)})
	}
	return spans, count, nil
}

// bound parses one decimal range bound.
func bound(s string) (int, error) {
	if s == "" {
		return 0, errors.New("missing number in range")
	}
	if len(s) > maxDigits {
		return 0, fmt.Errorf("number %q has more than %d digits", s, maxDigits)
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q is not a number", s)
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("number %q: %w", s, err)
	}
	return n, nil
}
