package packaging

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
)

// rpmInfo is what the test reads from an .rpm without the rpm tool: the
// package's name, version, release and arch, and its files with their
// modes and config flag. It is the fallback for machines where rpm cannot
// be installed, and CI checks it against rpm -qlvp.
type rpmInfo struct {
	Name, Version, Release, Arch string
	Files                        map[string]os.FileMode
	Config                       []string
}

// RPM header tags and types (rpm's lib/rpmtag.h).
const (
	rpmTagName       = 1000
	rpmTagVersion    = 1001
	rpmTagRelease    = 1002
	rpmTagArch       = 1022
	rpmTagFileModes  = 1030
	rpmTagFileFlags  = 1037
	rpmTagDirIndexes = 1116
	rpmTagBaseNames  = 1117
	rpmTagDirNames   = 1118

	rpmTypeInt16       = 3
	rpmTypeInt32       = 4
	rpmTypeString      = 6
	rpmTypeStringArray = 8
	rpmTypeI18NString  = 9

	rpmFileConfig = 1 << 0
)

type rpmHeader struct {
	index map[int32][3]int32 // tag: type, offset, count
	data  []byte
}

// readRPMHeader reads one header structure (magic, index, data store).
func readRPMHeader(r io.Reader) (rpmHeader, int, error) {
	var pre [16]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return rpmHeader{}, 0, fmt.Errorf("rpm header: %w", err)
	}
	if !bytes.Equal(pre[:4], []byte{0x8e, 0xad, 0xe8, 0x01}) {
		return rpmHeader{}, 0, errors.New("rpm header: bad magic")
	}
	n, size := binary.BigEndian.Uint32(pre[8:12]), binary.BigEndian.Uint32(pre[12:16])
	if n > 1<<16 || size > 1<<28 {
		return rpmHeader{}, 0, fmt.Errorf("rpm header: %d entries, %d bytes", n, size)
	}
	idx := make([]byte, 16*n)
	if _, err := io.ReadFull(r, idx); err != nil {
		return rpmHeader{}, 0, fmt.Errorf("rpm header index: %w", err)
	}
	h := rpmHeader{index: map[int32][3]int32{}, data: make([]byte, size)}
	if _, err := io.ReadFull(r, h.data); err != nil {
		return rpmHeader{}, 0, fmt.Errorf("rpm header data: %w", err)
	}
	for i := range int(n) {
		e := idx[16*i : 16*i+16]
		h.index[int32(binary.BigEndian.Uint32(e[0:4]))] = [3]int32{int32(binary.BigEndian.Uint32(e[4:8])),
			int32(binary.BigEndian.Uint32(e[8:12])), int32(binary.BigEndian.Uint32(e[12:16]))}
	}
	return h, 16 + len(idx) + len(h.data), nil
}

func (h rpmHeader) strings(tag int32) ([]string, error) {
	e, ok := h.index[tag]
	if !ok {
		return nil, nil
	}
	if e[0] != rpmTypeString && e[0] != rpmTypeStringArray && e[0] != rpmTypeI18NString {
		return nil, fmt.Errorf("rpm tag %d: type %d, want a string", tag, e[0])
	}
	if e[1] < 0 || int(e[1]) > len(h.data) {
		return nil, fmt.Errorf("rpm tag %d: offset %d out of range", tag, e[1])
	}
	parts := strings.SplitN(string(h.data[e[1]:]), "\x00", int(e[2])+1)
	if len(parts) < int(e[2]) {
		return nil, fmt.Errorf("rpm tag %d: %d strings, want %d", tag, len(parts), e[2])
	}
	return parts[:e[2]], nil
}

func (h rpmHeader) ints(tag int32) ([]int64, error) {
	e, ok := h.index[tag]
	if !ok {
		return nil, nil
	}
	width := map[int32]int{rpmTypeInt16: 2, rpmTypeInt32: 4}[e[0]]
	if width == 0 {
		return nil, fmt.Errorf("rpm tag %d: type %d, want an integer", tag, e[0])
	}
	end := int(e[1]) + width*int(e[2])
	if e[1] < 0 || end > len(h.data) {
		return nil, fmt.Errorf("rpm tag %d: data out of range", tag)
	}
	out := make([]int64, e[2])
	for i := range out {
		b := h.data[int(e[1])+width*i:]
		if width == 2 {
			out[i] = int64(binary.BigEndian.Uint16(b))
		} else {
			out[i] = int64(binary.BigEndian.Uint32(b))
		}
	}
	return out, nil
}

// readRPM reads the lead, the signature header (padded to 8 bytes) and the
// main header of an .rpm file.
func readRPM(file string) (rpmInfo, error) {
	f, err := os.Open(file)
	if err != nil {
		return rpmInfo{}, fmt.Errorf("open rpm: %w", err)
	}
	defer f.Close()
	var lead [96]byte
	if _, err := io.ReadFull(f, lead[:]); err != nil || !bytes.Equal(lead[:4], []byte{0xed, 0xab, 0xee, 0xdb}) {
		return rpmInfo{}, fmt.Errorf("rpm lead: not an rpm (%v)", err)
	}
	_, n, err := readRPMHeader(f)
	if err != nil {
		return rpmInfo{}, fmt.Errorf("signature: %w", err)
	}
	if pad := (8 - n%8) % 8; pad > 0 {
		if _, err := io.CopyN(io.Discard, f, int64(pad)); err != nil {
			return rpmInfo{}, fmt.Errorf("signature padding: %w", err)
		}
	}
	h, _, err := readRPMHeader(f)
	if err != nil {
		return rpmInfo{}, err
	}
	info := rpmInfo{Files: map[string]os.FileMode{}}
	for tag, dst := range map[int32]*string{rpmTagName: &info.Name, rpmTagVersion: &info.Version,
		rpmTagRelease: &info.Release, rpmTagArch: &info.Arch} {
		s, err := h.strings(tag)
		if err != nil || len(s) != 1 {
			return rpmInfo{}, fmt.Errorf("rpm tag %d: %v", tag, err)
		}
		*dst = s[0]
	}
	base, err1 := h.strings(rpmTagBaseNames)
	dirs, err2 := h.strings(rpmTagDirNames)
	dirIdx, err3 := h.ints(rpmTagDirIndexes)
	modes, err4 := h.ints(rpmTagFileModes)
	flags, err5 := h.ints(rpmTagFileFlags)
	if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
		return rpmInfo{}, err
	}
	if len(dirIdx) != len(base) || len(modes) != len(base) || len(flags) != len(base) {
		return rpmInfo{}, fmt.Errorf("rpm file list: %d names, %d dir indexes, %d modes, %d flags",
			len(base), len(dirIdx), len(modes), len(flags))
	}
	for i, b := range base {
		if dirIdx[i] < 0 || int(dirIdx[i]) >= len(dirs) {
			return rpmInfo{}, fmt.Errorf("rpm file %s: dir index %d", b, dirIdx[i])
		}
		p := path.Join(dirs[dirIdx[i]], b)
		m := os.FileMode(modes[i] & 0o777)
		switch modes[i] & 0o170000 {
		case 0o040000:
			m |= os.ModeDir
		case 0o120000:
			m |= os.ModeSymlink
		}
		info.Files[p] = m
		if flags[i]&rpmFileConfig != 0 {
			info.Config = append(info.Config, p)
		}
	}
	return info, nil
}

// listing renders the files like rpm -qlv's first and last columns.
func (in rpmInfo) listing() string {
	var b strings.Builder
	for p, m := range in.Files {
		fmt.Fprintf(&b, "%s %s\n", m, p)
	}
	return b.String()
}
