package ui

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Fold writes host names compactly in pdsh range syntax:
// gc001,gc002,gc003,gc007 -> gc[001-003,007].
func Fold(hosts []string) string {
	type key struct {
		prefix string
		width  int
	}
	nums := map[key][]int{}
	var plain []string
	var order []key
	for _, h := range hosts {
		i := len(h)
		for i > 0 && h[i-1] >= '0' && h[i-1] <= '9' {
			i--
		}
		if i == len(h) || len(h)-i > 9 {
			plain = append(plain, h)
			continue
		}
		n, _ := strconv.Atoi(h[i:])
		width := len(h) - i
		if h[i] != '0' || width == 1 {
			width = 0 // no zero padding to keep
		}
		k := key{h[:i], width}
		if _, ok := nums[k]; !ok {
			order = append(order, k)
		}
		nums[k] = append(nums[k], n)
	}
	var parts []string
	for _, k := range order {
		ns := nums[k]
		sort.Ints(ns)
		if len(ns) == 1 {
			parts = append(parts, k.prefix+pad(ns[0], k.width))
			continue
		}
		var ranges []string
		for i := 0; i < len(ns); {
			j := i
			for j+1 < len(ns) && ns[j+1] == ns[j]+1 {
				j++
			}
			if i == j {
				ranges = append(ranges, pad(ns[i], k.width))
			} else {
				ranges = append(ranges, pad(ns[i], k.width)+"-"+pad(ns[j], k.width))
			}
			i = j + 1
		}
		parts = append(parts, k.prefix+"["+strings.Join(ranges, ",")+"]")
	}
	parts = append(parts, plain...)
	return strings.Join(parts, ",")
}

func pad(n, width int) string {
	if width == 0 {
		return strconv.Itoa(n)
	}
	return fmt.Sprintf("%0*d", width, n)
}
