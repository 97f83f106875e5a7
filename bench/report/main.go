// Command report turns bench/run.sh's raw results (tab-separated, on stdin)
// into the markdown tables it prints.
//
// Input lines: kind, load, server, round, v1, v2, v3, ref, wpf.
//
//   - kind "rate": v1 requests/s, v2 p50 ms, v3 p99 ms ("ERR" or "NA" when the
//     run failed or the server lacks the load). ref names another load whose
//     Redis figures of the same round the concurrencydb figure is compared
//     with (the HTTP rows use "INCR 50c"). wpf is concurrencydb's writes per
//     fsync (group commit) during the run, from its INFO, when known.
//   - kind "mem": v1 resident MB, v2 data on disk MB, v3 load seconds.
//   - kind "note": load is a free-text line printed under the tables.
//
// Servers are "cdb", "always" and "memory". Cells are medians over rounds;
// ratios are the median of the per-round ratios (each round pairs runs made
// minutes apart, the only comparison that means something on a noisy box).
package main

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

type sample struct {
	rps, p50, p99 float64
	ok            bool
}

type key struct{ load, server string }

func main() {
	rates := map[key]map[int]sample{}
	refOf := map[string]string{}
	wpf := map[string][]float64{}
	var loads []string
	mem := map[string][3]float64{}
	var notes []string
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		for len(f) < 9 {
			f = append(f, "")
		}
		kind, load, server := f[0], f[1], f[2]
		round, _ := strconv.Atoi(f[3])
		switch kind {
		case "rate":
			k := key{load, server}
			if !slices.Contains(loads, load) {
				loads = append(loads, load)
			}
			if f[7] != "" {
				refOf[load] = f[7]
			}
			if w, err := strconv.ParseFloat(f[8], 64); err == nil && server == "cdb" {
				wpf[load] = append(wpf[load], w)
			}
			if rates[k] == nil {
				rates[k] = map[int]sample{}
			}
			s := sample{}
			var e1, e2, e3 error
			s.rps, e1 = strconv.ParseFloat(f[4], 64)
			s.p50, e2 = strconv.ParseFloat(f[5], 64)
			s.p99, e3 = strconv.ParseFloat(f[6], 64)
			s.ok = e1 == nil && e2 == nil && e3 == nil
			if !s.ok && f[4] == "NA" {
				continue // the server does not have this load
			}
			rates[k][round] = s
		case "mem":
			var v [3]float64
			for i := range v {
				v[i], _ = strconv.ParseFloat(f[4+i], 64)
			}
			mem[server] = v
		case "note":
			notes = append(notes, load)
		}
	}

	fmt.Println("| load | concurrencydb | Redis always | Redis memory | cdb / always | cdb / memory | cdb writes / fsync |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|")
	for _, load := range loads {
		ref := refOf[load]
		cdb := rates[key{load, "cdb"}]
		cells := []string{cell(cdb)}
		ratios := []string{}
		for _, srv := range []string{"always", "memory"} {
			other := rates[key{load, srv}]
			prefix := ""
			if ref != "" {
				other = rates[key{ref, srv}]
				prefix = ref + ": "
			}
			if len(other) == 0 {
				cells = append(cells, "—")
			} else {
				cells = append(cells, prefix+cell(other))
			}
			ratios = append(ratios, ratio(cdb, other))
		}
		w := "—"
		if len(wpf[load]) > 0 {
			w = fmt.Sprintf("%.1f", median(wpf[load]))
		}
		fmt.Printf("| %s | %s | %s | %s | %s |\n", load, strings.Join(cells, " | "), ratios[0], ratios[1], w)
	}

	if len(mem) > 0 {
		fmt.Println()
		fmt.Println("| memory, 1,000,000 keys × 100-byte values | concurrencydb | Redis always | Redis memory | cdb / always | cdb / memory |")
		fmt.Println("|---|---:|---:|---:|---:|---:|")
		for i, name := range []string{"resident memory (VmRSS), MB", "data on disk, MB", "load time, s"} {
			c, a, m := mem["cdb"][i], mem["always"][i], mem["memory"][i]
			fmt.Printf("| %s | %s | %s | %s | %s | %s |\n", name, num(c, mem["cdb"] != [3]float64{}), num(a, mem["always"] != [3]float64{}), num(m, mem["memory"] != [3]float64{}), div(c, a), div(c, m))
		}
	}
	if len(notes) > 0 {
		fmt.Println()
		for _, n := range notes {
			fmt.Println("- " + n)
		}
	}
}

func median(v []float64) float64 {
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

func cell(rs map[int]sample) string {
	if len(rs) == 0 {
		return "—"
	}
	var rps, p50, p99 []float64
	failed := 0
	for _, s := range rs {
		if !s.ok {
			failed++
			continue
		}
		rps = append(rps, s.rps)
		p50 = append(p50, s.p50)
		p99 = append(p99, s.p99)
	}
	if len(rps) == 0 {
		return "error"
	}
	s := fmt.Sprintf("%.0f (%s / %s)", median(rps), ms(median(p50)), ms(median(p99)))
	if failed > 0 {
		s += fmt.Sprintf(" [%d run(s) failed]", failed)
	}
	return s
}

func ms(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// ratio is the median of the per-round ratios a/b, over the rounds where
// both ran; a round where either failed is counted and said, not dropped
// silently (the median of the rest could otherwise pass for all of them).
func ratio(a, b map[int]sample) string {
	var r []float64
	skipped := 0
	for round, s := range a {
		o, ok := b[round]
		if s.ok && ok && o.ok && o.rps > 0 {
			r = append(r, s.rps/o.rps)
		} else {
			skipped++
		}
	}
	for round := range b {
		if _, ok := a[round]; !ok {
			skipped++
		}
	}
	if len(r) == 0 {
		return "—"
	}
	s := fmt.Sprintf("%.2f×", median(r))
	if skipped > 0 {
		s += fmt.Sprintf(" [%d of %d rounds]", len(r), len(r)+skipped)
	}
	return s
}

func num(v float64, present bool) string {
	if !present {
		return "—"
	}
	return fmt.Sprintf("%.1f", v)
}

func div(a, b float64) string {
	if a == 0 || b == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", a/b)
}
