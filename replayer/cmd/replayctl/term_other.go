//go:build !unix

package main

import "os"

// termWidth is unknown here: COLUMNS or the default applies.
func termWidth(*os.File) int { return 0 }
