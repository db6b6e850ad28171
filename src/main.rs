//! The `statewire` binary: the server and the command-line tools around it.

fn main() {
    println!("statewire");
}
