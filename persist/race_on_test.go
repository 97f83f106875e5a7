//go:build race

package persist

// raceEnabled: the race detector slows Pebble ~25×; the heaviest crash
// tests run a smaller share of their cases under it (the full set runs
// without it).
const raceEnabled = true
