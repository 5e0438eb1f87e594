fn main() {
    println!("tcvar");
}
