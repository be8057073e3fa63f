//go:build !race

package mockcn_test

// raceFactor scales memory bounds: the race detector multiplies what a program uses.
const raceFactor = 1
