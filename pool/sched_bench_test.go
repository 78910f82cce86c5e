package pool

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/lnst-go/lnst/internal/benchratio"
)

// The scheduling workload: recipes started all at once, as t.Parallel
// recipes are, each leasing 1 to 4 hosts of an 8-host pool and holding them
// for 5 to 50 time units. The pool's agents are never dialled: lease and
// release do not talk to them.

const (
	schedPoolHosts = 8
	schedRecipes   = 40
)

// schedUnit is BenchmarkSchedule40On8's time unit, a second of the
// user's time scale: recipes hold their hosts for 5 to 50 of them, and
// the anti-starvation rule's minute is 60 of them (schedStarve). The
// longer, the less the overheads of leasing (and of a loaded machine)
// weigh against the scheduling.
var schedUnit = flag.Duration("sched.unit", 4*time.Millisecond, "time unit of BenchmarkSchedule40On8's recipes (a second at the user's scale)")

// schedSeeds are the workloads BenchmarkSchedule40On8 runs.
var schedSeeds = []uint64{1, 2, 3, 4, 5, 6, 7, 8}

// schedStarve is SchedulerOptions.Starve's default minute scaled to the
// time unit, as if unit were a second.
func schedStarve(unit time.Duration) time.Duration {
	return time.Duration(float64(leaseStarve) * float64(unit) / float64(time.Second))
}

// schedPerturb is how far the history BenchmarkSchedule40On8 gives the
// scheduler is off: each duration of the earlier run times a factor
// between 1-schedPerturb and 1+schedPerturb, as recipes vary from run to
// run.
const schedPerturb = 0.5

// perturbedHistory is the Expect of a run after the one that held holds:
// each recipe's hold, perturbed by up to schedPerturb either way, from
// seed.
func perturbedHistory(holds []schedHold, seed uint64) map[string]time.Duration {
	r := rand.New(rand.NewPCG(seed, 2))
	out := map[string]time.Duration{}
	for i, h := range holds {
		f := 1 + schedPerturb*(2*r.Float64()-1)
		out["sched/"+strconv.Itoa(i)] = time.Duration(float64(h.end.Sub(h.start)) * f)
	}
	return out
}

// schedRecipe is one recipe of the workload: it needs hosts pool hosts
// and holds them for hold.
type schedRecipe struct {
	hosts int
	hold  time.Duration
}

// schedWorkload makes n recipes from seed, holding for 5 to 50 units.
func schedWorkload(seed uint64, n int, unit time.Duration) []schedRecipe {
	r := rand.New(rand.NewPCG(seed, 0))
	out := make([]schedRecipe, n)
	for i := range out {
		out[i] = schedRecipe{hosts: 1 + r.IntN(4), hold: time.Duration(5+r.IntN(46)) * unit}
	}
	return out
}

// schedReqs requires n hosts, each with one interface on network n1.
func schedReqs(n int) []HostReq {
	reqs := make([]HostReq, n)
	for i := range reqs {
		reqs[i] = HostReq{Name: fmt.Sprintf("h%d", i+1), Ifaces: []IfaceReq{{Name: "eth", Net: "n1"}}}
	}
	return reqs
}

// schedPool is a scheduler of an in-memory pool of n hosts with two
// interfaces each, on networks n1 and n2, and no claims. Its lease files
// go to a directory of t's.
func schedPool(t testing.TB, n int) *Scheduler {
	t.Setenv("TMPDIR", t.TempDir())
	p := &Pool{Path: "sched_bench_test.go"}
	for i := range n {
		name := fmt.Sprintf("m%d", i+1)
		p.Hosts = append(p.Hosts, Host{
			Name: name, Agent: name + ".invalid:7000", Insecure: true, Arch: "x86_64",
			Ifaces: []Iface{{Name: "eth0", Net: "n1"}, {Name: "eth1", Net: "n2"}},
		})
	}
	return newSched(t, p, SchedulerOptions{})
}

// newSched is the scheduler of the pool file p's provisioners.
func newSched(t testing.TB, p *Pool, opts SchedulerOptions) *Scheduler {
	t.Helper()
	s, err := NewScheduler(p.Path, Provisioners(p, nil), opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// schedHold is what one recipe held: its pool hosts, from start to end.
type schedHold struct {
	hosts      []string
	start, end time.Time
}

// runSchedule starts every recipe at once, each leasing its hosts from sp,
// holding them and releasing them, and returns what each held and the
// makespan. It fails if a host was leased to two recipes at once, by
// ownership at lease time and by overlapping hold intervals.
func runSchedule(sp *Scheduler, recipes []schedRecipe) ([]schedHold, time.Duration, error) {
	var (
		mu     sync.Mutex
		holder = map[string]int{} // pool host: index+1 of the recipe holding it
		errs   []error
		wg     sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	holds := make([]schedHold, len(recipes))
	start := make(chan struct{})
	for i, r := range recipes {
		wg.Go(func() {
			<-start
			m, err := sp.Lease(context.Background(), LeaseRequest{Name: "sched/" + strconv.Itoa(i), Hosts: schedReqs(r.hosts)})
			if err != nil {
				fail(fmt.Errorf("recipe %d: lease %d hosts: %w", i, r.hosts, err))
				return
			}
			h := schedHold{start: time.Now()}
			for _, hm := range m.Hosts {
				h.hosts = append(h.hosts, hm.Pool)
			}
			mu.Lock()
			for _, p := range h.hosts {
				if o := holder[p]; o != 0 {
					errs = append(errs, fmt.Errorf("pool host %s leased to recipe %d while recipe %d holds it", p, i, o-1))
				}
				holder[p] = i + 1
			}
			mu.Unlock()
			time.Sleep(r.hold)
			h.end = time.Now()
			mu.Lock()
			for _, p := range h.hosts {
				if holder[p] == i+1 {
					delete(holder, p)
				}
			}
			mu.Unlock()
			holds[i] = h
			sp.Release(m)
		})
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	var last time.Time
	for i, h := range holds {
		if h.end.IsZero() {
			errs = append(errs, fmt.Errorf("recipe %d never ran", i))
			continue
		}
		if len(h.hosts) != recipes[i].hosts || len(distinct(h.hosts)) != len(h.hosts) {
			errs = append(errs, fmt.Errorf("recipe %d needs %d hosts and got %v", i, recipes[i].hosts, h.hosts))
		}
		if h.end.After(last) {
			last = h.end
		}
	}
	errs = append(errs, overlaps(holds)...)
	return holds, last.Sub(t0), errors.Join(errs...)
}

func distinct(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}

// overlaps reports every two hold intervals of one host that overlap.
func overlaps(holds []schedHold) []error {
	type interval struct {
		recipe     int
		start, end time.Time
	}
	byHost := map[string][]interval{}
	for i, h := range holds {
		for _, p := range h.hosts {
			byHost[p] = append(byHost[p], interval{i, h.start, h.end})
		}
	}
	var errs []error
	for p, ivs := range byHost {
		sort.Slice(ivs, func(a, b int) bool { return ivs[a].start.Before(ivs[b].start) })
		for k := 1; k < len(ivs); k++ {
			if prev := ivs[k-1]; ivs[k].start.Before(prev.end) {
				errs = append(errs, fmt.Errorf("pool host %s: recipe %d held it from %v, before recipe %d released it", p, ivs[k].recipe, ivs[k].start.Sub(prev.start), prev.recipe))
			}
		}
	}
	return errs
}

// lowerBound is a lower bound of the makespan of recipes on n hosts: the
// longest recipe, and the hosts' busy time if the work were spread evenly
// (with at most 4 hosts per recipe any two recipes fit together on 8
// hosts, so no set of wide recipes gives a larger bound).
func lowerBound(recipes []schedRecipe, n int) time.Duration {
	var area, longest time.Duration
	for _, r := range recipes {
		area += time.Duration(r.hosts) * r.hold
		longest = max(longest, r.hold)
	}
	return max(area/time.Duration(n), longest)
}

// listSchedule is the makespan of recipes on n hosts when, each time hosts
// free up, the recipes not yet started are offered the free hosts in
// order and every one that fits starts (greedy list scheduling, no
// overheads).
func listSchedule(recipes []schedRecipe, order []int, n int) time.Duration {
	type run struct {
		end   time.Duration
		hosts int
	}
	var running []run
	var now, makespan time.Duration
	free, left := n, slices.Clone(order)
	for len(left) > 0 {
		left = slices.DeleteFunc(left, func(i int) bool {
			r := recipes[i]
			if r.hosts > free {
				return false
			}
			free -= r.hosts
			running = append(running, run{now + r.hold, r.hosts})
			makespan = max(makespan, now+r.hold)
			return true
		})
		if len(left) == 0 || len(running) == 0 {
			break
		}
		slices.SortFunc(running, func(a, b run) int { return int(a.end - b.end) })
		now = running[0].end
		for len(running) > 0 && running[0].end == now {
			free += running[0].hosts
			running = running[1:]
		}
	}
	return makespan
}

// widestFirst is the order Scheduler offers free hosts to waiting
// recipes without history: widest first, then in the order they asked.
func widestFirst(recipes []schedRecipe) []int {
	return schedOrder(recipes, nil)
}

// schedOrder is the order Scheduler offers free hosts to waiting recipes
// with history expect (by recipe, nil: none): widest first, then the
// longest expected, then in the order they asked.
func schedOrder(recipes []schedRecipe, expect []time.Duration) []int {
	order := make([]int, len(recipes))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		ra, rb := recipes[order[a]], recipes[order[b]]
		if ra.hosts != rb.hosts || expect == nil {
			return ra.hosts > rb.hosts
		}
		return expect[order[a]] > expect[order[b]]
	})
	return order
}

// bestOffline is the shortest list schedule found knowing the durations
// (which Scheduler does not): longest first, largest host-time first, and
// shuffles. It bounds the optimal makespan from above.
func bestOffline(recipes []schedRecipe, n int, seed uint64) time.Duration {
	order := widestFirst(recipes)
	best := listSchedule(recipes, order, n)
	for _, key := range []func(r schedRecipe) time.Duration{
		func(r schedRecipe) time.Duration { return r.hold },
		func(r schedRecipe) time.Duration { return r.hold * time.Duration(r.hosts) },
	} {
		sort.SliceStable(order, func(a, b int) bool { return key(recipes[order[a]]) > key(recipes[order[b]]) })
		best = min(best, listSchedule(recipes, order, n))
	}
	r := rand.New(rand.NewPCG(seed, 1))
	for range 2000 {
		r.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
		best = min(best, listSchedule(recipes, order, n))
	}
	return best
}

// heldRecipes are the recipes with the hold times they really had (a
// sleep overshoots), for the lower bound of a run.
func heldRecipes(recipes []schedRecipe, holds []schedHold) []schedRecipe {
	out := slices.Clone(recipes)
	for i, h := range holds {
		out[i].hold = h.end.Sub(h.start)
	}
	return out
}

// TestScheduleNoDoubleLease runs 40 short recipes at once on an 8-host
// pool: every one runs, and no host is ever leased to two at once.
func TestScheduleNoDoubleLease(t *testing.T) {
	for _, seed := range []uint64{1, 2} {
		sp := schedPool(t, schedPoolHosts)
		recipes := schedWorkload(seed, schedRecipes, 100*time.Microsecond)
		holds, makespan, err := runSchedule(sp, recipes)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		lb := lowerBound(heldRecipes(recipes, holds), schedPoolHosts)
		t.Logf("seed %d: makespan %v, lower bound %v, ratio %.3f", seed, makespan.Round(time.Microsecond), lb.Round(time.Microsecond), float64(makespan)/float64(lb))
		if len(sp.leased) != 0 || len(sp.locks) != 0 {
			t.Fatalf("seed %d: hosts still leased after every recipe released: %v", seed, sp.leased)
		}
	}
}

// BenchmarkSchedule40On8 runs 40 recipes of random host counts (1-4) and
// durations (5-50 units, see -sched.unit) at once on an 8-host pool, for
// each seed of schedSeeds, at the user's time scale: the unit stands for
// a second, and the anti-starvation rule's minute is scaled with it
// (schedStarve). It reports the makespan over its lower bound (target: at
// most 1.05).
//
// Each seed runs twice: first with no history (durations unknown: widest
// recipe first), then with the durations of that first run perturbed by
// up to +-50% (schedPerturb), as -lnst.history gives a run after a run
// whose recipes took other times. The sides of each ratio:
//
//	RATIO makespan/lowerbound <mean> (min, max, n seeds)
//	    the second run's makespan: from the moment every recipe asks for
//	    hosts to the last one's release, leases and sleeps included;
//	    over its lower bound: the longest hold, or the hosts' busy time
//	    spread evenly over the pool (lowerBound), from the holds measured
//	    in that run (a sleep overshoots)
//	RATIO makespan_nohistory/lowerbound <mean> (min, max, n seeds)
//	    the same for the first run, without history
//
// For comparison each seed's line gives, over the nominal lower bound,
// the list schedule of the scheduler's order with the perturbed history
// and without overheads (what the run aims at), the duration-blind
// widest-first list schedule, and the best schedule found knowing the
// durations (an upper bound of the optimum).
func BenchmarkSchedule40On8(b *testing.B) {
	unit := *schedUnit
	for b.Loop() {
		var ratios, firsts []float64
		var sumPlan, sumSim, sumOff float64
		for _, seed := range schedSeeds {
			recipes := schedWorkload(seed, schedRecipes, unit)
			sp := schedPool(b, schedPoolHosts)
			sp.opts.Starve = schedStarve(unit)
			holds, makespan, err := runSchedule(sp, recipes)
			if err != nil {
				b.Fatalf("seed %d: %v", seed, err)
			}
			first := float64(makespan) / float64(lowerBound(heldRecipes(recipes, holds), schedPoolHosts))
			history := perturbedHistory(holds, seed)
			sp = newSched(b, sp.p, SchedulerOptions{Expect: history, Starve: schedStarve(unit)})
			holds, makespan, err = runSchedule(sp, recipes)
			if err != nil {
				b.Fatalf("seed %d with history: %v", seed, err)
			}
			lb := lowerBound(heldRecipes(recipes, holds), schedPoolHosts)
			ratio := float64(makespan) / float64(lb)
			expect := make([]time.Duration, len(recipes))
			for i := range recipes {
				expect[i] = history["sched/"+strconv.Itoa(i)]
			}
			nominal := float64(lowerBound(recipes, schedPoolHosts))
			plan := float64(listSchedule(recipes, schedOrder(recipes, expect), schedPoolHosts)) / nominal
			sim := float64(listSchedule(recipes, widestFirst(recipes), schedPoolHosts)) / nominal
			off := float64(bestOffline(recipes, schedPoolHosts, seed)) / nominal
			fmt.Printf("seed %d: makespan %v, lower bound %v, ratio %.3f (without history %.3f; list schedule of the order with that history %.3f, widest-first %.3f, best offline %.3f)\n",
				seed, makespan.Round(100*time.Microsecond), lb.Round(100*time.Microsecond), ratio, first, plan, sim, off)
			ratios, firsts = append(ratios, ratio), append(firsts, first)
			sumPlan, sumSim, sumOff = sumPlan+plan, sumSim+sim, sumOff+off
		}
		n := float64(len(schedSeeds))
		benchratio.PrintOf("makespan/lowerbound", benchratio.Mean(ratios), ratios)
		benchratio.PrintOf("makespan_nohistory/lowerbound", benchratio.Mean(firsts), firsts)
		b.ReportMetric(benchratio.Mean(ratios), "makespan/lb")
		b.ReportMetric(slices.Max(ratios), "worst-makespan/lb")
		b.ReportMetric(sumPlan/n, "plan-sim/lb")
		b.ReportMetric(sumSim/n, "list-sim/lb")
		b.ReportMetric(sumOff/n, "offline/lb")
	}
}

// leaseWithin leases reqs (or want) from sp in the background and fails
// t unless the lease is done within d.
func leaseWithin(t *testing.T, sp *Scheduler, reqs []HostReq, want *Mapping, d time.Duration) Mapping {
	t.Helper()
	type result struct {
		m   Mapping
		err error
	}
	done := make(chan result, 1)
	go func() {
		m, err := sp.Lease(context.Background(), LeaseRequest{Hosts: reqs, Want: want})
		done <- result{m, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("lease: %v", r.err)
		}
		return r.m
	case <-time.After(d):
		t.Fatalf("lease: not done after %v", d)
	}
	panic("unreachable")
}

// TestLeaseWaitsForOtherProcess: a host another test process holds is not
// leased, and is leased once that process lets it go.
func TestLeaseWaitsForOtherProcess(t *testing.T) {
	sp := schedPool(t, 2)
	other := newSched(t, sp.p, SchedulerOptions{}) // another process: its own lease files
	want := &Mapping{Hosts: map[string]HostMatch{"h1": {Pool: "m1", Ifaces: map[string]string{"eth": "eth0"}}}}
	held := leaseWithin(t, other, nil, want, time.Second)
	if len(held.Hosts) != 1 {
		t.Fatalf("the other process leased %v, want m1", held)
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		other.Release(held)
	}()
	begin := time.Now()
	m := leaseWithin(t, sp, schedReqs(2), nil, 5*time.Second)
	if waited := time.Since(begin); waited < 50*time.Millisecond {
		t.Fatalf("leased %v after %v, while the other process held m1", m, waited)
	}
	sp.Release(m)
}

// TestLeaseStarvingRecipe: narrow recipes that keep leasing and releasing
// hosts do not keep a wide recipe waiting for longer than the starvation
// bound and the narrow recipes' hold.
func TestLeaseStarvingRecipe(t *testing.T) {
	sp := schedPool(t, 4)
	sp.opts.Starve = 30 * time.Millisecond
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				m, err := sp.Lease(context.Background(), LeaseRequest{Hosts: schedReqs(1)})
				if err != nil {
					t.Errorf("narrow recipe: %v", err)
					return
				}
				time.Sleep(2 * time.Millisecond)
				sp.Release(m)
			}
		})
	}
	defer wg.Wait()
	defer close(stop)
	time.Sleep(10 * time.Millisecond) // the narrow recipes hold the pool
	sp.Release(leaseWithin(t, sp, schedReqs(4), nil, 2*time.Second))
}
