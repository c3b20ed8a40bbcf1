//! The `citewatch` binary: all behaviour lives in the library (see `citewatch::cli`).

fn main() -> std::process::ExitCode {
    citewatch::cli::main()
}
