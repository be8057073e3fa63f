//go:build race

package harness

// raceEnabled: the tests run under -race, so the straas binary is built with it too.
const raceEnabled = true
