//! `bench ab A.wasm B.wasm`: two builds of the filter side by side, for judging a change on a busy
//! machine. Four Envoys (the `filter-host-cache` variant, one worker each), started in the order
//! A, B, B, A, run at once on Envoy's core, and wrk goes round them in short slices, so load from
//! elsewhere falls on both builds alike; an Envoy started later measured some 10 % slower than the
//! first here, whatever it ran, and the A-B-B-A order cancels that. Prints Envoy CPU µs per
//! request of each build over all slices, and the median of the per-round ratios B ÷ A, per
//! workload (`BENCH_WORKLOADS` picks them; `BENCH_AB_SLICES` rounds of `BENCH_DURATION`-second
//! slices, 10 × 1 s by default).

use crate::measure::{self, Sample};
use crate::setup::{self, Modules, Workload};
use crate::{Bench, env_num};
use serde_json::{Value, json};
use std::path::PathBuf;
use support::envoy::Envoy;

use crate::support;

impl Bench {
    pub fn ab(&mut self, a: PathBuf, b: PathBuf) -> Result<Value, String> {
        let slices: u32 = env_num("BENCH_AB_SLICES", 10)?.max(1);
        let secs: u32 = env_num("BENCH_DURATION", 1)?.max(1);
        let variant = setup::TABLE[5];
        // Which build each Envoy runs: A, B, B, A.
        let builds = [0, 1, 1, 0];
        let mut envoys = Vec::new();
        for module in builds.map(|i| if i == 0 { &a } else { &b }) {
            self.modules = Modules { filter: module.clone(), noop: self.modules.noop.clone() };
            // Checked and started as any variant, under a name of its own so both are checked.
            self.checked.retain(|n| *n != variant.name);
            let envoy = self.start(variant, &setup::jwks(), 1)?;
            envoys.push(envoy.ok_or_else(|| format!("{} cannot run", module.display()))?);
        }
        let mut out = Vec::new();
        for workload in self.settings.selected_workloads() {
            let (mut totals, mut ratios) = ([(0.0, 0u64); 2], Vec::new());
            for slice in 0..slices {
                let mut round = [0.0; 2];
                // Alternate the direction, as the table's rounds do.
                let mut order: Vec<usize> = (0..envoys.len()).collect();
                if slice % 2 == 1 {
                    order.reverse();
                }
                for i in order {
                    let (Some(envoy), Some(&build)) = (envoys.get(i), builds.get(i)) else { continue };
                    let s = self.slice(envoy, workload, secs)?;
                    totals[build].0 += s.envoy_cpu_s;
                    totals[build].1 += s.envoy_requests;
                    round[build] += s.cpu_us_per_request();
                }
                ratios.push(round[1] / round[0]);
            }
            ratios.sort_by(f64::total_cmp);
            let median = ratios.get(ratios.len() / 2).copied().unwrap_or(f64::NAN);
            let per_request = totals.map(|(cpu, n)| cpu * 1e6 / n.max(1) as f64);
            let line = format!(
                "{} {}: A {:.1} µs/req, B {:.1} µs/req, B ÷ A median of {} rounds {:.3} (range {:.3}–{:.3})",
                workload.alg.name,
                workload.kind(),
                per_request[0],
                per_request[1],
                ratios.len(),
                median,
                ratios.first().copied().unwrap_or(f64::NAN),
                ratios.last().copied().unwrap_or(f64::NAN),
            );
            println!("{line}");
            out.push(json!({"workload": line, "a_us": per_request[0], "b_us": per_request[1], "ratios": ratios}));
        }
        Ok(json!({"a": a, "b": b, "slices": slices, "slice_s": secs, "results": out}))
    }

    fn slice(&self, envoy: &Envoy, workload: Workload, secs: u32) -> Result<Sample, String> {
        let tokens = workload.tokens_file(&self.token_dir);
        let s = measure::sample(envoy, &self.settings.load, &tokens, 0, secs, self.ticks)?;
        match &s.invalid {
            Some(why) => Err(format!("{} {}: {why}", workload.alg.name, workload.kind())),
            None => Ok(s),
        }
    }
}
