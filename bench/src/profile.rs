//! Profiles taken while the load runs: `perf record` (software clock, DWARF call graphs) on a
//! system's processes for one closed-loop point, turned into a flamegraph SVG by inferno
//! (`cargo install inferno`; scripts/setup.sh --bench installs both).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context};

/// A `perf record` running on some processes.
pub(crate) struct Perf {
    child: Child,
    data: PathBuf,
    folded: PathBuf,
    svg: PathBuf,
}

impl Perf {
    /// Starts recording `pids` into `<dir>/<name>.perf.data`.
    pub(crate) fn start(dir: &Path, name: &str, pids: &[u32]) -> anyhow::Result<Perf> {
        std::fs::create_dir_all(dir)?;
        let data = dir.join(format!("{name}.perf.data"));
        let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
        let child = Command::new("perf")
            .args([
                "record",
                "-e",
                "cpu-clock",
                "-F",
                "99",
                "--call-graph",
                "dwarf,16384",
            ])
            .arg("-o")
            .arg(&data)
            .args(["-p", &pids.join(",")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot run perf (Debian's linux-perf)")?;
        Ok(Perf {
            child,
            data,
            folded: dir.join(format!("{name}.folded")),
            svg: dir.join(format!("{name}.svg")),
        })
    }

    /// Stops recording and writes the folded stacks (`<name>.folded`, one line per stack with
    /// its sample count) and the flamegraph; returns the flamegraph's path.
    pub(crate) fn finish(mut self) -> anyhow::Result<PathBuf> {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()?;
        if !status.success() {
            bail!("cannot stop perf");
        }
        self.child.wait()?;
        let script = format!(
            "perf script -i '{data}' 2>/dev/null | inferno-collapse-perf > '{folded}' && \
             inferno-flamegraph --minwidth 0.2 < '{folded}' > '{svg}'",
            data = self.data.display(),
            folded = self.folded.display(),
            svg = self.svg.display()
        );
        let status = Command::new("sh").args(["-c", &script]).status()?;
        if !status.success() {
            bail!("cannot make {} (is inferno installed?)", self.svg.display());
        }
        std::fs::remove_file(&self.data).ok();
        Ok(self.svg)
    }
}
