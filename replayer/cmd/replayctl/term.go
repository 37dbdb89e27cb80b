package main

import (
	"io"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"
)

// defaultWidth is the table width when the terminal's is unknown (or output is not a terminal).
const defaultWidth = 120

// terminal reports whether w is a terminal and its width in columns: COLUMNS when set, else
// the terminal's own (termWidth), else defaultWidth.
func terminal(w io.Writer) (bool, int) {
	f, ok := w.(*os.File)
	tty := false
	if ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	if n, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && n >= 40 {
		return tty, n
	}
	if tty {
		if n := termWidth(f); n >= 40 {
			return tty, n
		}
	}
	return tty, defaultWidth
}

// table writes rows under headers in aligned columns (two spaces apart) no wider than width:
// the last column is cut (with …) to what is left, at least 12 characters.
func table(w io.Writer, width int, headers []string, rows [][]string) error {
	cols := len(headers)
	widths := make([]int, cols)
	for i, h := range headers {
		widths[i] = utf8.RuneCountInString(h)
	}
	for _, r := range rows {
		for i := 0; i < cols-1; i++ {
			widths[i] = max(widths[i], utf8.RuneCountInString(r[i]))
		}
	}
	used := 0
	for i := 0; i < cols-1; i++ {
		used += widths[i] + 2
	}
	last := max(width-used, 12)
	var b strings.Builder
	line := func(cells []string) {
		for i, c := range cells {
			if i == cols-1 {
				b.WriteString(cut(c, last))
				break
			}
			b.WriteString(c)
			b.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c)+2))
		}
		b.WriteString("\n")
	}
	line(headers)
	for _, r := range rows {
		line(r)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// cut shortens s to n runes, ending in … when it was longer; newlines become spaces.
func cut(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
