// A CommonJS user: require('flashoptim') either works (Node's require of ES modules) or fails
// saying the package is an ES module (test/packaging.test.ts accepts only those two).
const flashoptim = require('flashoptim');
console.log(typeof flashoptim.createOptimizer);
