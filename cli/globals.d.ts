declare const __MM_VERSION__: string;
