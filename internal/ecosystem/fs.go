package ecosystem

import "io/fs"

// mustSub is fs.Sub for a directory known to exist in an embedded tree.
func mustSub(fsys fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic(err)
	}
	return sub
}
