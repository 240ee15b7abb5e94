fn main() -> std::process::ExitCode {
    shipgate::cli::run()
}
