package results

import (
	"encoding/json"
	"fmt"
	"strings"
)

// KindEvaluation is the Record.Kind of a record whose Value is an
// Evaluation.
const KindEvaluation = "evaluation"

// Verdicts of an Evaluation (Evaluation.Verdict).
const (
	// EvalPass: within the limit or the tolerance.
	EvalPass = "pass"
	// EvalFail: a regression beyond the tolerance, a flow that did not
	// flow, a run that took too long. The evaluator failed the test.
	EvalFail = "fail"
	// EvalImproved: better than the baseline beyond the tolerance;
	// reported, not a failure (the baseline may want recording again).
	EvalImproved = "improved"
	// EvalUnchecked: nothing to compare with (no baseline for this
	// machine class, no limit); Note says where it was looked for.
	EvalUnchecked = "unchecked"
)

// Evaluation is the verdict of an evaluator on one metric of a
// measurement, with the numbers it compared.
type Evaluation struct {
	// Evaluator names the evaluator: "nonzero", "baseline",
	// "cpu_per_throughput", "time_taken".
	Evaluator string `json:"evaluator"`
	// Subject is what was measured: the flow's name ("tcp").
	Subject string `json:"subject"`
	// Metric is the figure evaluated: "throughput", "cpu h1",
	// "cpu_per_gbit h2", "time".
	Metric string `json:"metric"`
	// Unit is the unit of Value and Reference ("bit/s", "%",
	// "CPU-s/Gbit", "s").
	Unit string `json:"unit"`
	// HigherIsBetter is the metric's direction: set for throughput and
	// rates, not for CPU use, latency or time.
	HigherIsBetter bool `json:"higher_is_better"`
	// Value is the measured figure (the mean of the iterations).
	Value float64 `json:"value"`
	// Reference is what Value was compared with: the baseline, or the
	// limit; 0 when Verdict is EvalUnchecked.
	Reference float64 `json:"reference"`
	// Tolerance is the relative change from Reference accepted, as a
	// fraction (0.1), on either side; 0 for a hard limit.
	Tolerance float64 `json:"tolerance"`
	// Delta is (Value - Reference) / Reference, in percent; 0 without a
	// Reference.
	Delta float64 `json:"delta"`
	// Verdict is EvalPass, EvalFail, EvalImproved or EvalUnchecked.
	Verdict string `json:"verdict"`
	// Note says more: where a baseline was looked for, which iterations
	// were zero.
	Note string `json:"note"`
}

// String formats e on one line, as the RESULTS SUMMARY shows it:
// "baseline tcp throughput: 9.41 Gbit/s vs 9.80 Gbit/s (-4.0%, tolerance
// 10%): pass".
func (e Evaluation) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s: %s", e.Evaluator, e.Subject, e.Metric, FormatValue(e.Value, e.Unit))
	if e.Verdict != EvalUnchecked && (e.Reference != 0 || e.Evaluator != "nonzero") {
		fmt.Fprintf(&b, " vs %s", FormatValue(e.Reference, e.Unit))
		if e.Reference != 0 {
			fmt.Fprintf(&b, " (%+.1f%%", e.Delta)
			if e.Tolerance > 0 {
				fmt.Fprintf(&b, ", tolerance %s", percent(100*e.Tolerance))
			}
			b.WriteString(")")
		}
	}
	b.WriteString(": " + strings.ToUpper(e.Verdict))
	if e.Note != "" {
		b.WriteString("; " + e.Note)
	}
	return b.String()
}

// Evaluation decodes the record's Value as an Evaluation; ok is false
// when the record is not one.
func (r Record) Evaluation() (e Evaluation, ok bool) {
	if r.Kind != KindEvaluation {
		return Evaluation{}, false
	}
	if err := json.Unmarshal(r.Value, &e); err != nil {
		return Evaluation{}, false
	}
	return e, true
}
